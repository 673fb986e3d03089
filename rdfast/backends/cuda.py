"""CUDA backend: the fused ops of ``rdfast.backends.spec`` on CUDA tensors (``rdfast._C``).

Same functions, signatures and results as ``rdfast.backends.reference``; kernels are enqueued
on torch's current stream of the tensors' device at launch time, so nothing synchronises and a
prepared launch can be captured in a CUDA graph on any stream.
"""
from __future__ import annotations

import torch

from . import native

name = "cuda"
METRIC_LAYOUTS = frozenset(native.spec.MetricLayout)


def unavailable_reason() -> str:
    """"" when this backend can run here, else why not."""
    if native.extension_reason():
        return native.extension_reason()
    if not native._C.has_cuda:
        return "extension built without CUDA (nvcc was not found at build time)"
    if native._C.cuda.device_count() == 0:
        return f"no CUDA device ({native._C.cuda.device_status()})"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} cannot use CUDA"
    return ""


class CudaOps(native.NativeOps):
    """Launches on the tensors' device, on torch's current stream there at launch time."""

    def _launch(self, launcher, launch_args, device, keep_alive):
        def launch():
            with torch.cuda.device(device):
                launcher(*launch_args, torch.cuda.current_stream(device).cuda_stream)
        launch.keep_alive = keep_alive
        return launch


_ops = CudaOps("cuda", native._C.cuda if native._C is not None and native._C.has_cuda else None)
prepare = _ops.prepare
globals().update(native.spec.op_functions(prepare))
