"""Triton backend: the fused per-chain operations as Triton kernels (``rdfast.kernels``).

Same functions, signatures and results as ``rdfast.backends.reference`` (the normative
reference); this module checks the tensors, picks block sizes and launches one program per
block of rows (per block of items for ``record``). The kernels run on CUDA tensors, or on
CPU tensors through the Triton interpreter when ``TRITON_INTERPRET=1`` was set before the
kernels were imported. β, Δβ and t are numbers passed by value (β, Δβ as float64), or 0-d
tensors on the arrays' device that the kernels read when they run (nothing is read to the
host, so the calls can be captured in a CUDA graph).
"""
from __future__ import annotations

import math
import os

import torch

from .cpu import scalar_arg
from .protocol import (
    ADAPT_CUMULATIVE,
    ADAPT_EMA,
    ADAPT_NONE,
    EMA_DECAY,
    EPS_GROW,
    EPS_MAX,
    EPS_MIN,
    EPS_SHRINK,
)

try:
    import triton
    from rdfast.kernels import distortion as _distortion
    from rdfast.kernels import leapfrog as _leapfrog
    from rdfast.kernels import metropolis as _metropolis
    from rdfast.kernels import record as _record
    _IMPORT_ERROR = ""
except ImportError as exc:  # triton is a Linux-only dependency
    _IMPORT_ERROR = f"cannot import the Triton kernels ({exc})"

name = "triton"

TILE_ELEMENTS = 2048  # elements of one [BLOCK_ROWS, BLOCK_COLS] tile
MAX_BLOCK_COLS = 128  # widest column block; longer rows are looped over


def unavailable_reason() -> str:
    """Empty when the kernels can run here: on a CUDA device, or on the CPU through the Triton
    interpreter (TRITON_INTERPRET=1, set before triton and rdfast were imported); else why not."""
    if _IMPORT_ERROR:
        return _IMPORT_ERROR
    if torch.cuda.is_available():
        return ""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return "no CUDA device (TRITON_INTERPRET=1 runs the kernels on CPU tensors through the Triton interpreter)"
    if not _interpreted():
        return "TRITON_INTERPRET=1 was set after triton or rdfast.kernels had been imported"
    return ""


def _interpreted() -> bool:
    """Whether the kernels, and the Triton library functions they call (tl.sum, ...), were
    defined under TRITON_INTERPRET=1: only then do they run on CPU tensors."""
    return not any(isinstance(f, triton.runtime.JITFunction) for f in (_record.record_kernel, triton.language.sum))


def _blocks(rows: int, cols: int) -> tuple[int, int]:
    """(BLOCK_ROWS, BLOCK_COLS): powers of two covering at most TILE_ELEMENTS elements."""
    block_cols = min(triton.next_power_of_2(max(cols, 1)), MAX_BLOCK_COLS)
    block_rows = min(triton.next_power_of_2(max(rows, 1)), max(TILE_ELEMENTS // block_cols, 1))
    return block_rows, block_cols


def _check(dtype: torch.dtype, rows: int, **tensors) -> None:
    """Every tensor contiguous, on one device, of ``dtype`` and with ``rows`` leading rows."""
    device = None
    for key, t in tensors.items():
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{key}: expected a tensor, got {type(t).__name__}")
        if t.dtype != dtype:
            raise TypeError(f"{key}: expected {dtype}, got {t.dtype}")
        if not t.is_contiguous():
            raise ValueError(f"{key}: must be contiguous (the op writes in place)")
        if t.dim() == 0 or t.shape[0] != rows:
            raise ValueError(f"{key}: expected {rows} rows, got shape {tuple(t.shape)}")
        device = device or t.device
        if t.device != device:
            raise ValueError(f"{key}: on {t.device}, other tensors on {device}")


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype T of states, gradients and data: float32 or float64."""
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"expected float32 or float64 states and data, got {t.dtype}")
    return t.dtype


def _check_states(**tensors) -> tuple[int, int]:
    """[B, K] tensors of one dtype, shaped like the first; returns (B, K)."""
    first, z = next(iter(tensors.items()))
    if z.dim() != 2:
        raise ValueError(f"{first}: expected [B, K], got shape {tuple(z.shape)}")
    _check(_compute_dtype(z), z.shape[0], **tensors)
    for key, t in tensors.items():
        if t is not None and t.shape != z.shape:
            raise ValueError(f"{key}: expected shape {tuple(z.shape)}, got {tuple(t.shape)}")
    return z.shape


def _scalar(op: str, name: str, value, dtype: torch.dtype, like: torch.Tensor) -> tuple:
    """(value, pointer, in memory?) kernel arguments of scalar ``name`` (checked as the compiled
    backends check it): a number by value, or a 0-d ``dtype`` tensor on the device of ``like``
    read by the kernel (``like`` is then a placeholder pointer of the same dtype)."""
    by_value, address = scalar_arg(op, name, value, dtype, like.device)
    return (by_value, value, True) if address else (by_value, like, False)


def distortion(kind, x, xhat, logvar, d, grad_xhat, grad_logvar, n_chains):
    """Write d [B] (float64) and ∂d/∂x̂ [B, P] (and ∂d/∂v [B, P] for per-row log-variance)."""
    kinds = {"gaussian_nll": _distortion.GAUSSIAN_NLL.value, "bernoulli_nll": _distortion.BERNOULLI_NLL.value,
             "squared_error": _distortion.SQUARED_ERROR.value}
    if kind not in kinds:
        raise ValueError(f"kind: unknown built-in distortion {kind!r}")
    N, P = x.shape
    B = N * n_chains
    dtype = _compute_dtype(x)
    _check(dtype, B, xhat=xhat, grad_xhat=grad_xhat)
    _check(dtype, N, x=x)
    _check(torch.float64, B, d=d)
    if xhat.shape != (B, P) or grad_xhat.shape != (B, P):
        raise ValueError(f"xhat, grad_xhat: expected shape {(B, P)}")
    mode = _distortion.LOGVAR_SHARED.value
    if kind == "gaussian_nll":
        if logvar is None:
            raise ValueError("logvar: gaussian_nll needs a log-variance [1], [P] or [B, P]")
        logvar = logvar.reshape(1) if logvar.dim() == 0 else logvar
        _check(dtype, logvar.shape[0], logvar=logvar)
        if logvar.shape == (B, P):
            if grad_logvar is None or grad_logvar.shape != (B, P):
                raise ValueError(f"grad_logvar: expected shape {(B, P)} for a per-row log-variance")
            _check(dtype, B, grad_logvar=grad_logvar)
            mode = _distortion.LOGVAR_ROW.value
        elif logvar.shape == (P,) and P != 1:
            mode = _distortion.LOGVAR_PIXEL.value
        elif logvar.shape != (1,):
            raise ValueError(f"logvar: expected shape [1], [{P}] or [{B}, {P}], got {tuple(logvar.shape)}")
    block_rows, block_cols = _blocks(B, P)
    _distortion.distortion_kernel[(triton.cdiv(B, block_rows),)](
        x, xhat, logvar if logvar is not None else xhat, d, grad_xhat,
        grad_logvar if mode == _distortion.LOGVAR_ROW.value else grad_xhat,
        B, P, n_chains,
        KIND=kinds[kind], LOGVAR=mode, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols,
    )


def leapfrog_begin(z0, g0, d0, p, z, logw, h0, beta, dbeta, eps, prior_energy=None, prior_grad=None):
    """logw −= Δβ·d0;  h0 = U(z0) + ½‖p‖²;  p −= ½ε ∇U(z0);  z = z0 + ε p."""
    B, K = _check_states(z0=z0, g0=g0, p=p, z=z, prior_grad=prior_grad)
    _check(torch.float64, B, d0=d0, logw=logw, h0=h0, eps=eps, prior_energy=prior_energy)
    block_rows, block_cols = _blocks(B, K)
    beta, beta_at, beta_in_memory = _scalar("leapfrog_begin", "beta", beta, torch.float64, eps)
    dbeta, dbeta_at, dbeta_in_memory = _scalar("leapfrog_begin", "dbeta", dbeta, torch.float64, eps)
    _leapfrog.leapfrog_begin_kernel[(triton.cdiv(B, block_rows),)](
        z0, g0, d0, p, z, logw, h0, eps,
        d0 if prior_energy is None else prior_energy, z0 if prior_grad is None else prior_grad,
        beta_at, dbeta_at, B, K, beta, dbeta,
        HAS_PRIOR_ENERGY=prior_energy is not None, HAS_PRIOR_GRAD=prior_grad is not None,
        BETA_AT=beta_in_memory, DBETA_AT=dbeta_in_memory, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols,
    )


def leapfrog_step(z, g, p, beta, eps, prior_grad=None):
    """Full kick then drift: p −= ε ∇U(z);  z += ε p."""
    _kick(False, z, g, p, beta, eps, prior_grad)


def leapfrog_end(z, g, p, beta, eps, prior_grad=None):
    """Final half kick: p −= ½ε ∇U(z)."""
    _kick(True, z, g, p, beta, eps, prior_grad)


def _kick(last, z, g, p, beta, eps, prior_grad):
    """Launch ``rdfast.kernels.leapfrog``'s kick (and drift unless ``last``) on z, g, p [B, K]."""
    B, K = _check_states(z=z, g=g, p=p, prior_grad=prior_grad)
    _check(torch.float64, B, eps=eps)
    block_rows, block_cols = _blocks(B, K)
    op = "leapfrog_end" if last else "leapfrog_step"
    beta, beta_at, beta_in_memory = _scalar(op, "beta", beta, torch.float64, eps)
    _leapfrog.leapfrog_kick_kernel[(triton.cdiv(B, block_rows),)](
        z, g, p, eps, z if prior_grad is None else prior_grad, beta_at, B, K, beta, LAST=last,
        HAS_PRIOR_GRAD=prior_grad is not None, BETA_AT=beta_in_memory, BLOCK_ROWS=block_rows,
        BLOCK_COLS=block_cols,
    )


def metropolis(z0, g0, d0, z, g, d, p, h0, u, beta, eps, accept_stat, n_accept, n_diverge,
               adapt, target, t, prior_energy=None):
    """Accept iff H1 finite and log u < h0 − H1; select (z, g, d) into (z0, g0, d0); statistics; adapt ε."""
    B, K = _check_states(z0=z0, g0=g0, z=z, g=g, p=p)
    _check(torch.float64, B, d0=d0, d=d, h0=h0, u=u, eps=eps, accept_stat=accept_stat,
           prior_energy=prior_energy)
    _check(torch.int64, B, n_accept=n_accept, n_diverge=n_diverge)
    if adapt not in (ADAPT_NONE, ADAPT_EMA, ADAPT_CUMULATIVE):
        raise ValueError(f"adapt: expected a code of rdfast.backends.protocol, got {adapt!r}")
    block_rows, block_cols = _blocks(B, K)
    beta, beta_at, beta_in_memory = _scalar("metropolis", "beta", beta, torch.float64, eps)
    t, t_at, t_in_memory = _scalar("metropolis", "t", t, torch.int64, n_accept)
    if not t_in_memory and t < 1:  # a t in memory is the caller's to keep >= 1
        raise ValueError(f"t: counts transitions including this one and must be >= 1, got {t}")
    _metropolis.metropolis_kernel[(triton.cdiv(B, block_rows),)](
        z0, g0, d0, z, g, d, p, h0, u, eps, accept_stat, n_accept, n_diverge,
        d if prior_energy is None else prior_energy, beta_at, t_at,
        B, K, t, beta, float(target), EPS_GROW, EPS_SHRINK,
        HAS_PRIOR_ENERGY=prior_energy is not None, ADAPT=adapt != ADAPT_NONE,
        CUMULATIVE=adapt == ADAPT_CUMULATIVE, BETA_AT=beta_in_memory, T_AT=t_in_memory, EMA_DECAY=EMA_DECAY,
        EPS_MIN=EPS_MIN, EPS_MAX=EPS_MAX, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols,
    )


def record(logw, d, n_chains, log_z, dist, ess):
    """Per item log Ẑ, D̂ and ESS [N] from log w and d [B] (float64)."""
    B = logw.shape[0]
    if B % n_chains:
        raise ValueError(f"n_chains: {n_chains} does not divide the {B} rows")
    N = B // n_chains
    _check(torch.float64, B, logw=logw, d=d)
    _check(torch.float64, N, log_z=log_z, dist=dist, ess=ess)
    block_items, block_chains = _blocks(N, n_chains)
    _record.record_kernel[(triton.cdiv(N, block_items),)](
        logw, d, log_z, dist, ess, N, n_chains, math.log(n_chains),
        BLOCK_ITEMS=block_items, BLOCK_CHAINS=block_chains,
    )
