"""The cuda backend's check of a GPU against the code of its build, with a stand-in for the CUDA
device queries (tests/conftest.py ``fake_gpus``): GPU code (SASS) for sm_XY runs on X.Z with Z ≥ Y,
PTX for compute_XY on any capability ≥ X.Y; ``available()``, ``get`` and ``auto`` refuse a GPU
that neither covers, naming its capability and how to rebuild. The ops themselves are compared
with the reference on a GPU in tests/backends/test_conformance.py."""
import pytest
import torch

from rdfast import backends
from rdfast.backends import cuda

GPU0, GPU1 = torch.device("cuda", 0), torch.device("cuda", 1)


@pytest.mark.parametrize("arch, runs, does_not_run", [
    ("80-real", [(8, 0), (8, 6), (8, 9)], [(7, 5), (9, 0), (12, 0)]),
    ("90-virtual", [(9, 0), (10, 0), (12, 0)], [(8, 9), (7, 0)]),
    ("86", [(8, 6), (8, 9), (9, 0), (12, 1)], [(8, 0), (7, 5)]),
])
def test_which_code_runs_on_which_capability(arch, runs, does_not_run):
    parsed = cuda.Arch.parse(arch)
    assert [parsed.runs_on(c) for c in runs] == [True] * len(runs)
    assert [parsed.runs_on(c) for c in does_not_run] == [False] * len(does_not_run)


def test_architectures_are_named_as_nvcc_names_them():
    assert [str(cuda.Arch.parse(a)) for a in ("80-real", "90-virtual", "86")] == ["sm_80", "compute_90",
                                                                                  "sm_86 + compute_86"]


def test_a_gpu_without_code_is_refused(fake_gpus):
    fake_gpus((7, 0))
    report = backends.available()["cuda"]
    assert not report["available"]
    for expected in ("compute capability 7.0 (sm_70) has no code in this build", "sm_80, sm_90, compute_90",
                     'CMAKE_CUDA_ARCHITECTURES="70-real;80-real;90-real;90-virtual"'):
        assert expected in report["reason"], report["reason"]
    with pytest.raises(ValueError, match=r"backend: 'cuda' is not available here \(compute capability 7\.0"):
        backends.get("cuda", GPU0)
    assert backends.get("auto", GPU0).name != "cuda"
    assert not backends.runs("cuda", GPU0)


@pytest.mark.parametrize("capability", [(9, 0), (8, 6), (12, 0)], ids=["sm90-sass", "sm86-sass80", "sm120-ptx90"])
def test_a_gpu_with_code_is_accepted(fake_gpus, capability):
    fake_gpus(capability)
    assert backends.available()["cuda"] == {"available": True, "devices": ["cuda"], "reason": ""}
    assert backends.get("cuda", GPU0) is cuda and backends.get("auto", GPU0) is cuda
    assert backends.get("auto", torch.device("cuda")) is cuda  # the current device


def test_without_ptx_a_newer_gpu_is_refused(fake_gpus):
    fake_gpus((12, 0), architectures="80-real,90-real")
    assert "sm_120" in backends.available()["cuda"]["reason"]


def test_each_gpu_is_checked_on_its_own(fake_gpus):
    """One GPU with code is enough for the backend to be available; the other is still refused."""
    fake_gpus((9, 0), (7, 5))
    assert backends.available()["cuda"]["available"]
    assert backends.get("cuda", GPU0) is cuda and backends.get("auto", GPU1).name != "cuda"
    with pytest.raises(ValueError, match=r"cuda:1: compute capability 7\.5"):
        backends.get("cuda", GPU1)


def test_environment_names_each_gpu_and_the_build(fake_gpus):
    fake_gpus((9, 0), (7, 0))
    lines = dict(backends.environment())
    assert lines["CUDA kernels"].startswith("built by nvcc 13.0.88") and lines["CUDA kernels"].endswith(
        "for sm_80, sm_90, compute_90")
    assert lines["CUDA driver"] == "13.0"
    assert lines["GPU cuda:0"] == "stand-in GPU 0, sm_90: the CUDA kernels run on it"
    assert lines["GPU cuda:1"].startswith("stand-in GPU 1, sm_70: compute capability 7.0 (sm_70) has no code")
    assert lines["torch"].startswith(torch.__version__)


def test_keyed_random_numbers_use_the_cuda_kernel_only_where_it_has_code(fake_gpus):
    from rdfast.sampling import rng

    fake_gpus((9, 0), (7, 0))
    rng._compiled.cache_clear()
    try:
        assert rng._compiled(GPU0) and not rng._compiled(GPU1)
    finally:
        rng._compiled.cache_clear()  # the answers for the machine as it is
