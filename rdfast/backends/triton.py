"""Triton backend: the fused per-chain operations as Triton kernels (``rdfast.kernels``).

Same functions, signatures and results as ``rdfast.backends.reference`` (the normative
reference). ``prepare`` checks the tensors against ``rdfast.backends.spec`` once, picks block
sizes and returns a launch of one program per block of rows (per block of items for
``record``). The kernels run on CUDA tensors, or on CPU tensors through the Triton interpreter
when ``TRITON_INTERPRET=1`` was set before the kernels were imported. β and Δβ are numbers
passed by value (as float64), or 0-d tensors on the arrays' device that the kernels read when
they run (nothing is read to the host, so the launches can be captured in a CUDA graph).
"""
from __future__ import annotations

import math
import os

import torch

from . import spec

try:
    import triton
    from rdfast.kernels import distortion as _distortion
    from rdfast.kernels import leapfrog as _leapfrog
    from rdfast.kernels import metropolis as _metropolis
    from rdfast.kernels import record as _record
    IMPORT_ERROR = ""
except ImportError as exc:  # triton is a Linux-only dependency
    IMPORT_ERROR = f"cannot import the Triton kernels ({exc})"

name = "triton"
METRIC_LAYOUTS = frozenset(spec.MetricLayout)

TILE_ELEMENTS = 2048  # elements of one [BLOCK_ROWS, BLOCK_COLS] tile
MAX_BLOCK_COLS = 128  # widest column block; longer rows are looped over


def unavailable_reason() -> str:
    """Empty when the kernels can run here: on a CUDA device, or on the CPU through the Triton
    interpreter (TRITON_INTERPRET=1, set before triton and rdfast were imported); else why not."""
    if IMPORT_ERROR:
        return IMPORT_ERROR
    if torch.cuda.is_available():
        return ""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return "no CUDA device (TRITON_INTERPRET=1 runs the kernels on CPU tensors through the Triton interpreter)"
    if not interpreted():
        return "TRITON_INTERPRET=1 was set after triton or rdfast.kernels had been imported"
    return ""


def interpreted() -> bool:
    """Whether the kernels, and the Triton library functions they call (tl.sum, ...), were
    defined under TRITON_INTERPRET=1: only then do they run on CPU tensors."""
    return not any(isinstance(f, triton.runtime.JITFunction) for f in (_record.record_kernel, triton.language.sum))


def _blocks(rows: int, cols: int) -> tuple[int, int]:
    """(BLOCK_ROWS, BLOCK_COLS): powers of two covering at most TILE_ELEMENTS elements."""
    block_cols = min(triton.next_power_of_2(max(cols, 1)), MAX_BLOCK_COLS)
    block_rows = min(triton.next_power_of_2(max(rows, 1)), max(TILE_ELEMENTS // block_cols, 1))
    return block_rows, block_cols


def _scalar(op: str, name: str, value, like: torch.Tensor) -> tuple:
    """(value, pointer, in memory?) kernel arguments of float64 scalar ``name``: a number by
    value, or a 0-d float64 tensor on the device of ``like`` read by the kernel (``like`` is then
    a placeholder pointer)."""
    by_value, address = spec.scalar(op, name, value, torch.float64, like.device)
    return (by_value, value, True) if address else (by_value, like, False)


def _launch(kernel, grid, args, constexprs, device):
    def launch():
        with torch.cuda.device(device) if device.type == "cuda" else _no_guard():
            kernel[grid](*args, **constexprs)
    launch.keep_alive = args
    return launch


class _no_guard:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _prepare_distortion(kw, bound):
    kind = spec.Kind.of(kw["kind"])
    B, P = bound.sizes["B"], bound.sizes["P"]
    layout = (spec.logvar_layout(kw["logvar"], bound, kw["grad_logvar"]) if kind == spec.Kind.GAUSSIAN_NLL
              else spec.LogvarLayout.NONE)
    xhat = kw["xhat"]
    logvar = kw["logvar"] if layout != spec.LogvarLayout.NONE else xhat
    grad_logvar = kw["grad_logvar"] if layout == spec.LogvarLayout.PER_ROW else kw["grad_xhat"]
    block_rows, block_cols = _blocks(B, P)
    args = (kw["x"], xhat, logvar, kw["d"], kw["grad_xhat"], grad_logvar, B, P, kw["n_chains"])
    return _distortion.distortion_kernel, (triton.cdiv(B, block_rows),), args, dict(
        KIND=int(kind), LOGVAR=int(layout), BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)


def _prepare_leapfrog_begin(kw, bound):
    B, K = bound.sizes["B"], bound.sizes["K"]
    block_rows, block_cols = _blocks(B, K)
    eps = kw["eps"]
    beta, beta_at, beta_in_memory = _scalar("leapfrog_begin", "beta", kw["beta"], eps)
    dbeta, dbeta_at, dbeta_in_memory = _scalar("leapfrog_begin", "dbeta", kw["dbeta"], eps)
    pe, pg = kw["prior_energy"], kw["prior_grad"]
    args = (kw["z0"], kw["g0"], kw["d0"], kw["p"], kw["z"], kw["logw"], kw["h0"], eps,
            kw["d0"] if pe is None else pe, kw["z0"] if pg is None else pg, beta_at, dbeta_at, B, K, beta, dbeta)
    return _leapfrog.leapfrog_begin_kernel, (triton.cdiv(B, block_rows),), args, dict(
        METRIC=int(spec.metric_layout("leapfrog_begin", kw["metric"])), HAS_PRIOR_ENERGY=pe is not None,
        HAS_PRIOR_GRAD=pg is not None, BETA_AT=beta_in_memory, DBETA_AT=dbeta_in_memory,
        BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)


def _prepare_kick(op, kw, bound):
    """``rdfast.kernels.leapfrog``'s kick (and drift unless leapfrog_end) on z, g, p [B, K]."""
    B, K = bound.sizes["B"], bound.sizes["K"]
    block_rows, block_cols = _blocks(B, K)
    beta, beta_at, beta_in_memory = _scalar(op, "beta", kw["beta"], kw["eps"])
    pg = kw["prior_grad"]
    last = op == "leapfrog_end"
    args = (kw["z"], kw["g"], kw["p"], kw["eps"], kw["z"] if pg is None else pg, beta_at, B, K, beta)
    return _leapfrog.leapfrog_kick_kernel, (triton.cdiv(B, block_rows),), args, dict(
        LAST=last, METRIC=int(spec.metric_layout(op, None if last else kw["metric"])),
        HAS_PRIOR_GRAD=pg is not None, BETA_AT=beta_in_memory, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)


def _prepare_metropolis(kw, bound):
    B, K = bound.sizes["B"], bound.sizes["K"]
    block_rows, block_cols = _blocks(B, K)
    beta, beta_at, beta_in_memory = _scalar("metropolis", "beta", kw["beta"], kw["h0"])
    pe = kw["prior_energy"]
    args = (kw["z0"], kw["g0"], kw["d0"], kw["z"], kw["g"], kw["d"], kw["p"], kw["h0"], kw["u"], kw["accepted"],
            kw["accept_prob"], kw["n_accept"], kw["n_diverge"], kw["d"] if pe is None else pe, beta_at, B, K, beta)
    return _metropolis.metropolis_kernel, (triton.cdiv(B, block_rows),), args, dict(
        METRIC=int(spec.metric_layout("metropolis", kw["metric"])), HAS_PRIOR_ENERGY=pe is not None,
        BETA_AT=beta_in_memory, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)


def _prepare_record(kw, bound):
    N, M = bound.sizes["N"], kw["n_chains"]
    block_items, block_chains = _blocks(N, M)
    args = (kw["logw"], kw["d"], kw["log_z"], kw["dist"], kw["ess"], N, M, math.log(M))
    return _record.record_kernel, (triton.cdiv(N, block_items),), args, dict(
        BLOCK_ITEMS=block_items, BLOCK_CHAINS=block_chains)


_PREPARE = {"distortion": _prepare_distortion, "leapfrog_begin": _prepare_leapfrog_begin,
            "leapfrog_step": lambda kw, bound: _prepare_kick("leapfrog_step", kw, bound),
            "leapfrog_end": lambda kw, bound: _prepare_kick("leapfrog_end", kw, bound),
            "metropolis": _prepare_metropolis, "record": _prepare_record}


def prepare(op: str, **kw):
    """A launch of ``op`` with these arguments (checked now; nothing is checked at launch)."""
    kw = spec.call_arguments(op, (), kw)
    bound = spec.bind(op, {name: kw.get(name) for name in spec.OPS[op].arrays}, kw.get("n_chains"))
    kernel, grid, args, constexprs = _PREPARE[op](kw, bound)
    return _launch(kernel, grid, args, constexprs, bound.device)


globals().update(spec.op_functions(prepare))
