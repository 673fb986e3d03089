"""CUDA backend: the fused ops of ``rdfast.backends.protocol`` on CUDA tensors (``rdfast._C``).

Same functions, signatures and results as ``rdfast.backends.reference``; kernels are
enqueued on torch's current stream of the tensors' device, so nothing synchronises.
"""
from __future__ import annotations

import torch

from .cpu import NativeOps, _C, scalar_arg, unavailable_reason as _extension_reason

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


def philox_words(seed: int, items: torch.Tensor, n_chains: int, n_blocks: int, step, stream: int) -> torch.Tensor:
    """rdfast.rng's Philox-4x32-10 words [4, N, M, n_blocks] (int64) on the device of ``items``,
    enqueued on torch's current stream; ``step`` an int or a 0-d int64 tensor on that device."""
    items = items.to(torch.int64).contiguous()
    words = torch.empty(4, items.numel(), n_chains, n_blocks, dtype=torch.int64, device=items.device)
    with torch.cuda.device(items.device):
        _C.cuda.philox_words(seed, items.data_ptr(), items.numel(), n_chains, n_blocks,
                             *scalar_arg("philox_words", "step", step, torch.int64, items.device), stream,
                             words.data_ptr(), torch.cuda.current_stream(items.device).cuda_stream)
    return words


_ops = CudaOps("cuda", _C.cuda if _C is not None and _C.has_cuda else None)
distortion = _ops.distortion
leapfrog_begin = _ops.leapfrog_begin
leapfrog_step = _ops.leapfrog_step
leapfrog_end = _ops.leapfrog_end
metropolis = _ops.metropolis
record = _ops.record
