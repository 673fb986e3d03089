"""Distortion value and gradient in one pass over the decoder output.

Row r of ``xhat [B, P]`` is compared with data row ``x[r // M]`` (``x [N, P]``, never tiled):
  gaussian_nll:  d = ½ Σ_j (x_j − x̂_j)² e^{−v_j} + v_j + log 2π;  ∂d/∂x̂ = (x̂ − x) e^{−v};
                 ∂d/∂v = ½ (1 − (x − x̂)² e^{−v})  (written only for per-row log-variance)
  bernoulli_nll: d = Σ_j softplus(x̂_j) − x_j x̂_j;  ∂d/∂x̂ = σ(x̂) − x
  squared_error: d = Σ_j (x_j − x̂_j)²;  ∂d/∂x̂ = 2 (x̂ − x)
Elementwise terms are computed in the data dtype T, the sum over j in float64.
"""
import math

import triton
import triton.language as tl

from rdfast.backends import spec

from .numerics import sigmoid, softplus
from .tiles import column_tile, row_block

GAUSSIAN_NLL = tl.constexpr(int(spec.Kind.GAUSSIAN_NLL))
BERNOULLI_NLL = tl.constexpr(int(spec.Kind.BERNOULLI_NLL))
LOGVAR_SCALAR = tl.constexpr(int(spec.LogvarLayout.SCALAR))  # v [1]
LOGVAR_PIXEL = tl.constexpr(int(spec.LogvarLayout.PER_PIXEL))  # v [P], shared by all rows
LOGVAR_ROW = tl.constexpr(int(spec.LogvarLayout.PER_ROW))  # v [B, P], one per row (its gradient is written too)

LOG_2PI = tl.constexpr(math.log(2.0 * math.pi))


@triton.jit
def distortion_kernel(
    x_ptr, xhat_ptr, logvar_ptr, d_ptr, grad_xhat_ptr, grad_logvar_ptr,
    n_rows, n_cols, n_chains,
    KIND: tl.constexpr, LOGVAR: tl.constexpr,
    BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr,
):
    """d [B] float64, grad_xhat [B, P] (and grad_logvar [B, P]) for BLOCK_ROWS rows."""
    rows, row_ok, row_start = row_block(n_rows, n_cols, BLOCK_ROWS)  # [R], [R], [R, 1]
    item_start = (rows // n_chains).to(tl.int64)[:, None] * n_cols  # [R, 1]
    total = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    for start in range(0, n_cols, BLOCK_COLS):
        cols, mask, at_row = column_tile(row_ok, row_start, start, n_cols, BLOCK_COLS)  # [C], [R, C], [R, C]
        xhat = tl.load(xhat_ptr + at_row, mask=mask, other=0.0)  # [R, C]
        x = tl.load(x_ptr + item_start + cols[None, :], mask=mask, other=0.0)
        if KIND == GAUSSIAN_NLL:
            if LOGVAR == LOGVAR_ROW:
                v = tl.load(logvar_ptr + at_row, mask=mask, other=0.0)
            elif LOGVAR == LOGVAR_PIXEL:
                v = tl.load(logvar_ptr + cols, mask=cols < n_cols, other=0.0)[None, :]
            elif LOGVAR == LOGVAR_SCALAR:
                v = tl.load(logvar_ptr)
            else:
                v = tl.zeros([BLOCK_ROWS, BLOCK_COLS], dtype=xhat.dtype)
            diff = xhat - x
            precision = tl.exp(-v)
            scaled_sq = diff * diff * precision
            terms = scaled_sq.to(tl.float64) + v.to(tl.float64) + LOG_2PI
            grad = diff * precision
            if LOGVAR == LOGVAR_ROW:
                tl.store(grad_logvar_ptr + at_row, 0.5 * (1.0 - scaled_sq), mask=mask)
        elif KIND == BERNOULLI_NLL:
            terms = (softplus(xhat) - x * xhat).to(tl.float64)
            grad = sigmoid(xhat) - x
        else:
            diff = xhat - x
            terms = (diff * diff).to(tl.float64)
            grad = 2.0 * diff
        tl.store(grad_xhat_ptr + at_row, grad, mask=mask)
        total += tl.sum(tl.where(mask, terms, 0.0), axis=1)
    if KIND == GAUSSIAN_NLL:
        total = 0.5 * total
    tl.store(d_ptr + rows, total, mask=row_ok)


# ---- launch: the arguments of the kernel above (``rdfast.backends.triton.prepare``) ----------

def prepare_distortion(kw, bound, tiles):
    """(kernel, grid, arguments, constexprs) of the distortion op: one program per BLOCK_ROWS rows."""
    kind = spec.Kind.of(kw["kind"])
    B, P = bound.sizes["B"], bound.sizes["P"]
    layout = (spec.logvar_layout(kw["logvar"], bound, kw["grad_logvar"]) if kind == spec.Kind.GAUSSIAN_NLL
              else spec.LogvarLayout.NONE)
    xhat = kw["xhat"]
    logvar = kw["logvar"] if layout != spec.LogvarLayout.NONE else xhat
    grad_logvar = kw["grad_logvar"] if layout == spec.LogvarLayout.PER_ROW else kw["grad_xhat"]
    block_rows, block_cols = tiles.blocks(B, P)
    args = (kw["x"], xhat, logvar, kw["d"], kw["grad_xhat"], grad_logvar, B, P, kw["n_chains"])
    return distortion_kernel, (tiles.cdiv(B, block_rows),), args, dict(
        KIND=int(kind), LOGVAR=int(layout), BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)
