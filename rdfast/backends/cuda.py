"""CUDA backend: the fused ops of ``rdfast.backends.protocol`` on CUDA tensors (``rdfast._C``).

Same functions, signatures and results as ``rdfast.backends.torch_backend``; kernels are
enqueued on torch's current stream of the tensors' device, so nothing synchronises.
"""
from __future__ import annotations

import torch

from .cpu import NativeOps, _C, unavailable_reason as _extension_reason

name = "cuda"


def unavailable_reason() -> str:
    """"" when this backend can run here, else why not."""
    if _extension_reason():
        return _extension_reason()
    if not _C.has_cuda:
        return "extension built without CUDA (nvcc was not found at build time)"
    if _C.cuda.device_count() == 0:
        return f"no CUDA device ({_C.cuda.device_status()})"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} cannot use CUDA"
    return ""


class CudaOps(NativeOps):
    """NativeOps that launch on the tensors' device, on torch's current stream there."""

    def _launch(self, op, device, *args):
        with torch.cuda.device(device):
            getattr(self.launchers, op)(*args, torch.cuda.current_stream(device).cuda_stream)


_ops = CudaOps("cuda", _C.cuda if _C is not None and _C.has_cuda else None)
distortion = _ops.distortion
leapfrog_begin = _ops.leapfrog_begin
leapfrog_step = _ops.leapfrog_step
leapfrog_end = _ops.leapfrog_end
metropolis = _ops.metropolis
record = _ops.record
