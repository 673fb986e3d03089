"""The compiled extension: built with CUDA wherever nvcc is found, importable without a GPU
or driver, and the backend registry says why cuda is unavailable on machines without one."""
import shutil
import subprocess

import torch

from rdfast import _C
from rdfast.backends import available
from rdfast.backends.spec import OPS


def test_package_and_kernels_import():
    import rdfast.kernels  # noqa: F401  (the Triton kernels ship as rdfast.kernels)

    assert _C.__name__ == "rdfast._C"
    assert all(callable(getattr(_C.cpu, op)) for op in OPS)


def test_cuda_is_compiled_where_nvcc_is_found():
    if shutil.which("nvcc"):
        assert _C.has_cuda, "nvcc is on PATH but rdfast._C was built without CUDA: rebuild (pip install ...)"
    if _C.has_cuda:
        assert all(callable(getattr(_C.cuda, op)) for op in OPS)


def test_cuda_runtime_is_linked_statically():
    """Importing rdfast must not need libcudart: the CUDA runtime is inside _C."""
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is needed to inspect rdfast._C"
    dynamic = subprocess.run([readelf, "-d", _C.__file__], capture_output=True, text=True, check=True).stdout
    assert "libcudart" not in dynamic


def test_registry_reports_cuda_with_a_reason():
    report = available()["cuda"]
    device_count = _C.cuda.device_count() if _C.has_cuda else 0
    if device_count and torch.cuda.is_available():
        assert report == {"available": True, "devices": ["cuda"], "reason": ""}
    else:
        assert not report["available"]
        expected = "no CUDA device" if _C.has_cuda else "extension built without CUDA"
        assert report["reason"].startswith(expected), report["reason"]
    assert available()["cpu"]["available"], available()["cpu"]["reason"]


def test_device_count_never_fails():
    """Without a driver or GPU the count is 0 and the status says why; never an exception."""
    if not _C.has_cuda:
        assert not hasattr(_C, "cuda")
        return
    count = _C.cuda.device_count()
    assert count >= 0
    assert (_C.cuda.device_status() == "") == (count > 0)
