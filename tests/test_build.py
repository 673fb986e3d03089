"""The compiled extension: rdfast._C (CPU kernels) always, rdfast._C_cuda (CUDA kernels) per the
RDFAST_CUDA option, each importable without a GPU or driver; the build records what it did and the
backend registry says why cuda is unavailable on machines without one.

The CMake tests configure this source tree into temporary folders (no pip install): with a CUDA
compiler that fails (CUDACXX=/bin/false, or an nvcc that does not know sm_90), ``auto`` warns and
still builds a CPU extension that works, ``on`` stops with an error, ``off`` never calls it.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rdfast import _C
from rdfast.backends import available, cuda, native
from rdfast.backends.spec import OPS

ROOT = Path(__file__).resolve().parents[1]
CMAKE = shutil.which("cmake")
NVCC = shutil.which("nvcc")


def test_package_and_kernels_import():
    import rdfast.kernels  # noqa: F401  (the Triton kernels ship as rdfast.kernels)

    assert _C.__name__ == "rdfast._C"
    assert all(callable(getattr(_C.cpu, op)) for op in OPS)


def test_cuda_is_compiled_where_nvcc_is_found():
    record = cuda.build_record()
    assert record["RDFAST_CUDA"] in ("auto", "on", "off")
    if NVCC and record["RDFAST_CUDA"] != "off":
        assert record["cuda_built"], f"nvcc is on PATH but the CUDA kernels were not built: {record['cuda_reason']}"
    assert record["cuda_built"] == (native._C_cuda is not None), native.CUDA_IMPORT_ERROR
    if native._C_cuda is not None:
        assert all(callable(getattr(native._C_cuda, op)) for op in OPS)
        assert cuda.architectures() and native._C_cuda.nvcc_version.count(".") == 2


def test_cuda_runtime_is_linked_statically():
    """Importing rdfast must not need libcudart: the CUDA runtime is inside _C_cuda, and _C has none."""
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is needed to inspect the compiled modules"
    modules = [_C] + ([native._C_cuda] if native._C_cuda is not None else [])
    for module in modules:
        dynamic = subprocess.run([readelf, "-d", module.__file__], capture_output=True, text=True, check=True).stdout
        assert "libcudart" not in dynamic, module.__file__


@pytest.mark.gpu
def test_registry_reports_cuda_with_a_reason():
    report = available()["cuda"]
    device_count = native._C_cuda.device_count() if native._C_cuda is not None else 0
    if device_count and torch.cuda.is_available():
        assert report["available"] == any(not cuda.device_reason(torch.device("cuda", i))
                                          for i in range(torch.cuda.device_count())), report
    else:
        assert not report["available"]
        expected = "no CUDA device" if native._C_cuda is not None else "rdfast was built without its CUDA kernels"
        assert report["reason"].startswith(expected), report["reason"]
    assert available()["cpu"]["available"], available()["cpu"]["reason"]


@pytest.mark.gpu
def test_device_count_never_fails():
    """Without a driver or GPU the count is 0 and the status says why; never an exception."""
    if native._C_cuda is None:
        pytest.skip(f"the CUDA kernels are not built: {cuda.build_record().get('cuda_reason')}")
    count = native._C_cuda.device_count()
    assert count >= 0
    assert (native._C_cuda.device_status() == "") == (count > 0)
    assert native._C_cuda.driver_version() >= 0


# ---------------------------------------------------------------- the RDFAST_CUDA option, in CMake

def configure(build_dir: Path, *defines: str, nvcc: str | None = None) -> subprocess.CompletedProcess:
    """``cmake -S <this tree> -B build_dir`` with ``defines``; ``nvcc`` as CUDACXX."""
    if CMAKE is None:
        pytest.skip("cmake is not on the PATH")
    pybind11 = pytest.importorskip("pybind11")
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": "2"}
    env.pop("CUDAARCHS", None)
    if nvcc is not None:
        env["CUDACXX"] = nvcc
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    command = [CMAKE, "-S", str(ROOT), "-B", str(build_dir), *generator, "-DCMAKE_BUILD_TYPE=Release",
               f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", *defines]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def record(build_dir: Path) -> dict:
    return json.loads((build_dir / "build_info.json").read_text())


# Runs in a fresh process: the freshly built rdfast._C in place of the installed one, no CUDA
# module; the cpu backend must give the torch reference's result, and the registry tell why cuda
# is unavailable.
USE_BUILT_EXTENSION = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("rdfast._C", sys.argv[1])
sys.modules["rdfast._C"] = module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["rdfast._C_cuda"] = None  # not the installed one
import torch, rdfast
from rdfast.backends import available, native
from rdfast.testing import linear_problem
assert native._C is module
problem = linear_problem(3, 7, n_items=3, logvar=-0.5, seed=1)
runs = [rdfast.ais(problem.decoder, problem.x, rdfast.schedules.sigmoid(12, 5.0), logvar=problem.logvar, n_chains=4,
                   leapfrog_steps=3, record=4, seed=0, backend=name) for name in ("cpu", "torch")]
torch.testing.assert_close(runs[0].log_z, runs[1].log_z, rtol=1e-10, atol=1e-10)
print(json.dumps(available()["cuda"]))
"""


def test_failing_nvcc_under_auto_warns_and_builds_the_cpu_extension(tmp_path):
    proc = configure(tmp_path, nvcc="/bin/false")
    assert proc.returncode == 0, proc.stderr
    assert "RDFAST_CUDA=auto: building the CUDA module with /bin/false" in proc.stderr  # the warning
    built = record(tmp_path)
    assert built["RDFAST_CUDA"] == "auto" and built["cuda_built"] is False and "/bin/false" in built["cuda_reason"]
    build = subprocess.run([CMAKE, "--build", str(tmp_path), "--target", "_C"], capture_output=True, text=True,
                           env={**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": "2"}, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    (module,) = tmp_path.glob("_C.*")
    run = subprocess.run([sys.executable, "-c", USE_BUILT_EXTENSION, str(module)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert not report["available"]
    assert report["reason"].startswith("rdfast was built without its CUDA kernels: building the CUDA module with "
                                       "/bin/false"), report["reason"]


def test_failing_nvcc_under_on_is_an_error(tmp_path):
    proc = configure(tmp_path, "-DRDFAST_CUDA=on", nvcc="/bin/false")
    assert proc.returncode != 0
    assert "RDFAST_CUDA=on: building the CUDA module with /bin/false" in proc.stderr, proc.stderr
    assert not (tmp_path / "build_info.json").exists()


def test_off_never_calls_the_cuda_compiler(tmp_path):
    proc = configure(tmp_path, "-DRDFAST_CUDA=OFF", nvcc="/bin/false")
    assert proc.returncode == 0, proc.stderr
    assert record(tmp_path) == {"RDFAST_CUDA": "off", "cuda_built": False, "cuda_reason": "RDFAST_CUDA=off"}
    assert not (tmp_path / "cuda").exists()


@pytest.mark.skipif(NVCC is None, reason="needs nvcc")
@pytest.mark.parametrize("refuses, error", [
    ("*sm_90*|*compute_90*", "nvcc fatal   : Unsupported gpu architecture 'compute_90'"),  # older than 11.8
    ("*cuda_device.cu*", "cuda_device.cu(1): error: a kernel nvcc cannot compile"),  # fails in the build
], ids=["no-sm90", "kernel"])
def test_nvcc_failures_under_auto_are_recorded(tmp_path, refuses, error):
    """nvcc behind a stand-in that fails where a real one can: at the compiler check or on a kernel."""
    failing_nvcc = tmp_path / "nvcc"
    failing_nvcc.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in {refuses}) echo "{error}" >&2; exit 1;; esac
        exec {NVCC} "$@"
        """))
    failing_nvcc.chmod(0o755)
    proc = configure(tmp_path / "build", nvcc=str(failing_nvcc))
    assert proc.returncode == 0, proc.stderr
    assert "RDFAST_CUDA=auto: building the CUDA module" in proc.stderr
    built = record(tmp_path / "build")
    assert not built["cuda_built"] and error in built["cuda_reason"], built


@pytest.mark.parametrize("define, message", [
    ("-DRDFAST_CUDA=maybe", "RDFAST_CUDA: expected auto, on or off, got 'maybe'"),
    ("-DCMAKE_CUDA_ARCHITECTURES=native", "CMAKE_CUDA_ARCHITECTURES: expected CUDA architectures such as"),
])
def test_bad_settings_are_refused_before_any_build(tmp_path, define, message):
    proc = configure(tmp_path, define, nvcc="/bin/false")
    assert proc.returncode != 0 and message in " ".join(proc.stderr.split()), proc.stderr
