"""Backend registry: which implementations of the fused per-chain ops this machine has.

``get(name, device)`` returns a backend module implementing the ops of ``rdfast.backends.spec``
(each op as a function, and ``prepare(op, **arguments)`` for a launch checked once);
``available()`` reports every backend with whether it can run here and, if not, why; ``runs``
says whether one runs on a device; ``environment()`` lists the versions the GPU backends depend on.
A backend module says why it cannot run here (``unavailable_reason()``) and may refuse a particular
device it can run on in general (``device_reason(device)``: the cuda backend refuses GPUs its build
has no code for).
"""
from __future__ import annotations

import importlib
import os

import torch

# name -> (module, device types it runs on), in order of preference for "auto"
_BACKENDS = {
    "cuda": ("rdfast.backends.cuda", ("cuda",)),
    "triton": ("rdfast.backends.triton", ("cuda",)),
    "cpu": ("rdfast.backends.cpu", ("cpu",)),
    "torch": ("rdfast.backends.reference", ("cpu", "cuda")),
}


def _devices(name: str) -> tuple:
    """Device types ``name`` runs on; Triton's interpreter (TRITON_INTERPRET=1) adds the CPU."""
    devices = _BACKENDS[name][1]
    if name == "triton" and os.environ.get("TRITON_INTERPRET") == "1":
        devices = (*devices, "cpu")
    return devices


def _load(name: str):
    """Import backend ``name``; returns (module or None, reason it is unavailable or "")."""
    module_name, _ = _BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, f"import failed: {exc}"
    reason = getattr(module, "unavailable_reason", lambda: "")()
    return (None, reason) if reason else (module, "")


def _device_reason(module, device: torch.device) -> str:
    """"" when the available backend ``module`` runs on ``device``, else why not."""
    check = getattr(module, "device_reason", None)
    return check(device) if check is not None else ""


def available() -> dict:
    """{name: {"available": bool, "devices": [...], "reason": str}} for every backend."""
    report = {}
    for name in _BACKENDS:
        module, reason = _load(name)
        report[name] = {"available": module is not None, "devices": list(_devices(name)), "reason": reason}
    return report


def get(name: str, device: torch.device):
    """The backend module called ``name`` ("auto" picks the fastest one for ``device``; it never
    picks Triton's interpreter)."""
    if name == "auto":
        for candidate, (_, devices) in _BACKENDS.items():
            if device.type in devices:
                module, _ = _load(candidate)
                if module is not None and not _device_reason(module, device):
                    return module
        raise ValueError(f"backend: no backend runs on device {device}")
    if name not in _BACKENDS:
        raise ValueError(f"backend: expected one of {['auto', *_BACKENDS]}, got {name!r}")
    module, reason = _load(name)
    if module is None:
        raise ValueError(f"backend: {name!r} is not available here ({reason})")
    if device.type not in _devices(name):
        raise ValueError(f"backend: {name!r} runs on {_devices(name)}, but the tensors are on {device}")
    reason = _device_reason(module, device)
    if reason:
        raise ValueError(f"backend: {name!r} cannot run on {device}: {reason}")
    return module


def runs(name: str, device: torch.device) -> bool:
    """Whether backend ``name`` is available and runs on ``device``."""
    try:
        get(name, device)
    except ValueError:
        return False
    return True


def environment() -> list[tuple[str, str]]:
    """(label, text) lines of what the GPU backends depend on: torch and the CUDA it was built
    with, the CUDA kernels of this build (RDFAST_CUDA, nvcc, architectures), the driver, each GPU
    with its compute capability and whether the kernels run on it, and Triton."""
    from . import cuda, triton

    return [("torch", f"{torch.__version__} (CUDA {torch.version.cuda or 'none: a CPU build'})"),
            *cuda.describe(), ("Triton", triton.describe())]
