"""Triton backend: the fused per-chain operations as Triton kernels (``rdfast.kernels``).

Same functions, signatures and results as ``rdfast.backends.reference`` (the normative
reference). ``prepare`` checks the tensors against ``rdfast.backends.spec`` once and returns a
launch of one program per block of rows (per block of items for ``record``); the kernel module
of each op (``spec.OPS[op].kernels``) says how its kernel is launched (``prepare_<op>``). The
kernels run on CUDA tensors, each launch under a guard of the arrays' device (Triton launches on
the current one), or on CPU tensors through the Triton interpreter when ``TRITON_INTERPRET=1`` was
set before the kernels were imported. β and Δβ are numbers passed by value (as float64: Triton
≥ 3.4, ``MIN_VERSION``), or 0-d tensors on the arrays' device that the kernels read when they run
(nothing is read to the host, so the launches can be captured in a CUDA graph).
"""
from __future__ import annotations

import contextlib
import importlib
import os

import torch

from . import spec

try:
    import triton
    from rdfast.kernels import record as record_kernels  # the kernels load now: a failure is reported here
    IMPORT_ERROR = ""
except ImportError as exc:  # triton is optional (the triton extra), and Linux-only
    IMPORT_ERROR = f"cannot import the Triton kernels ({exc})"

name = "triton"
METRIC_LAYOUTS = frozenset(spec.MetricLayout)
MIN_VERSION = (3, 4)  # Triton before 3.4 passes float64 scalar arguments (β, Δβ) to kernels as float32

TILE_ELEMENTS = 2048  # elements of one [BLOCK_ROWS, BLOCK_COLS] tile
MAX_BLOCK_COLS = 128  # widest column block; longer rows are looped over


def unavailable_reason() -> str:
    """Empty when the kernels can run here: on a CUDA device, or on the CPU through the Triton
    interpreter (TRITON_INTERPRET=1, set before triton and rdfast were imported); else why not."""
    if IMPORT_ERROR:
        return IMPORT_ERROR
    if _version() < MIN_VERSION:
        return (f"triton {triton.__version__} passes float64 scalars to kernels as float32 (fixed in Triton 3.4): "
                "install triton>=3.4 (pip install 'rdfast[triton]')")
    if torch.cuda.is_available():
        return ""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return "no CUDA device (TRITON_INTERPRET=1 runs the kernels on CPU tensors through the Triton interpreter)"
    if not interpreted():
        return "TRITON_INTERPRET=1 was set after triton or rdfast.kernels had been imported"
    return ""


def _version() -> tuple[int, int]:
    major, minor = triton.__version__.split(".")[:2]
    return int(major), int(minor)


def describe() -> str:
    """Triton's version, and why this backend cannot run here if it cannot (for ``rdfast backends``)."""
    if IMPORT_ERROR:
        return IMPORT_ERROR
    reason = unavailable_reason()
    return triton.__version__ + (f" ({reason})" if reason else "")


def interpreted() -> bool:
    """Whether the kernels, and the Triton library functions they call (tl.sum, ...), were
    defined under TRITON_INTERPRET=1: only then do they run on CPU tensors."""
    return not any(isinstance(f, triton.runtime.JITFunction) for f in (record_kernels.record_kernel, triton.language.sum))


class _Tiles:
    """What a kernel module's ``prepare_<op>(kw, bound, tiles)`` needs from this backend."""

    @staticmethod
    def blocks(rows: int, cols: int) -> tuple[int, int]:
        """(BLOCK_ROWS, BLOCK_COLS): powers of two covering at most TILE_ELEMENTS elements."""
        block_cols = min(triton.next_power_of_2(max(cols, 1)), MAX_BLOCK_COLS)
        block_rows = min(triton.next_power_of_2(max(rows, 1)), max(TILE_ELEMENTS // block_cols, 1))
        return block_rows, block_cols

    @staticmethod
    def cdiv(a: int, b: int) -> int:
        return triton.cdiv(a, b)

    @staticmethod
    def scalar(op: str, name: str, value, like: torch.Tensor) -> tuple:
        """(value, pointer, in memory?) kernel arguments of float64 scalar ``name``: a number by
        value, or a 0-d float64 tensor on the device of ``like`` read by the kernel (``like`` is
        then a placeholder pointer)."""
        by_value, address = spec.scalar(op, name, value, torch.float64, like.device)
        return (by_value, value, True) if address else (by_value, like, False)


def _launch(kernel, grid, args, constexprs, device):
    """The launch, under a guard of the arrays' CUDA device (Triton launches on the current one)."""
    def launch():
        with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
            kernel[grid](*args, **constexprs)
    launch.keep_alive = args
    return launch


def prepare(op: str, **kw):
    """A launch of ``op`` with these arguments (checked now; nothing is checked at launch)."""
    kw = spec.call_arguments(op, (), kw)
    bound = spec.bind(op, {name: kw.get(name) for name in spec.OPS[op].arrays}, kw.get("n_chains"))
    module = importlib.import_module(f"rdfast.kernels.{spec.OPS[op].kernels}")
    kernel, grid, args, constexprs = getattr(module, f"prepare_{op}")(kw, bound, _Tiles)
    return _launch(kernel, grid, args, constexprs, bound.device)


globals().update(spec.op_functions(prepare))
