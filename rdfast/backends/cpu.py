"""C++ backend: the fused ops of ``rdfast.backends.spec`` on CPU tensors (``rdfast._C``, OpenMP).

Same functions, signatures and results as ``rdfast.backends.reference``; ``prepare`` makes a
launch checked once (``rdfast.backends.native``). Fuses the metrics of ``spec.MetricLayout``.
"""
from __future__ import annotations

from . import native

name = "cpu"
METRIC_LAYOUTS = frozenset(native.spec.MetricLayout)


def unavailable_reason() -> str:
    """"" when this backend can run here, else why not."""
    return native.extension_reason()


_ops = native.NativeOps("cpu", native._C.cpu if native._C is not None else None)
prepare = _ops.prepare
globals().update(native.spec.op_functions(prepare))
