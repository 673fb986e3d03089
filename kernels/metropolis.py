"""Metropolis end of an HMC transition, step-size statistics and adaptation, per row.

  H1 = E(z) + β d + ½‖p‖²  (float64; E = ½‖z‖² unless a prior energy [B] is given)
  accept = H1 finite ∧ log u < h0 − H1;  a non-finite H1 is a divergence (and a rejection)
  accepted rows: (z0, g0, d0) ← (z, g, d), by masked stores (a selection: rejected rows are
  neither read nor written, so a rejected NaN cannot leak)
  n_accept += accept;  n_diverge += ¬finite
  statistic a: n_accept / t (CUMULATIVE) else EMA_DECAY·a + (1 − EMA_DECAY)·accept
  ADAPT: ε ← clamp(ε · (eps_grow if a > target else eps_shrink), EPS_MIN, EPS_MAX)
β and t are kernel arguments, or (BETA_AT / T_AT) numbers in memory read at launch.
"""
import triton
import triton.language as tl

from .numerics import as_float64, is_finite, scalar_f64


@triton.jit(do_not_specialize=["t"])  # t changes every transition: one compiled kernel for all
def metropolis_kernel(
    z0_ptr, g0_ptr, d0_ptr, z_ptr, g_ptr, d_ptr, p_ptr, h0_ptr, u_ptr, eps_ptr,
    accept_stat_ptr, n_accept_ptr, n_diverge_ptr, prior_energy_ptr, beta_at_ptr, t_at_ptr,
    n_rows, n_cols, t, beta: tl.float64, target: tl.float64, eps_grow: tl.float64, eps_shrink: tl.float64,
    HAS_PRIOR_ENERGY: tl.constexpr, ADAPT: tl.constexpr, CUMULATIVE: tl.constexpr,
    BETA_AT: tl.constexpr, T_AT: tl.constexpr,
    EMA_DECAY: tl.constexpr,
    EPS_MIN: tl.constexpr, EPS_MAX: tl.constexpr,
    BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr,
):
    """Accept/reject BLOCK_ROWS proposals (z, g, d, p) against the states (z0, g0, d0) in place."""
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)  # [R]
    row_ok = rows < n_rows
    row_start = rows.to(tl.int64)[:, None] * n_cols  # [R, 1]
    z_sq = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    p_sq = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    for start in range(0, n_cols, BLOCK_COLS):
        cols = start + tl.arange(0, BLOCK_COLS)  # [C]
        mask = row_ok[:, None] & (cols < n_cols)[None, :]  # [R, C]
        at = row_start + cols[None, :]
        if not HAS_PRIOR_ENERGY:
            z = tl.load(z_ptr + at, mask=mask, other=0.0).to(tl.float64)
            z_sq += tl.sum(z * z, axis=1)
        p = tl.load(p_ptr + at, mask=mask, other=0.0).to(tl.float64)
        p_sq += tl.sum(p * p, axis=1)
    if HAS_PRIOR_ENERGY:
        prior_energy = tl.load(prior_energy_ptr + rows, mask=row_ok, other=0.0)
    else:
        prior_energy = 0.5 * z_sq
    d = tl.load(d_ptr + rows, mask=row_ok, other=0.0)
    h1 = prior_energy + scalar_f64(beta, beta_at_ptr, BETA_AT) * d + 0.5 * p_sq  # [R]
    finite = is_finite(h1)
    h0 = tl.load(h0_ptr + rows, mask=row_ok, other=0.0)
    u = tl.load(u_ptr + rows, mask=row_ok, other=1.0)
    accept = row_ok & finite & (tl.log(u) < h0 - h1)  # [R]

    for start in range(0, n_cols, BLOCK_COLS):
        cols = start + tl.arange(0, BLOCK_COLS)
        take = accept[:, None] & (cols < n_cols)[None, :]  # [R, C]
        at = row_start + cols[None, :]
        tl.store(z0_ptr + at, tl.load(z_ptr + at, mask=take), mask=take)
        tl.store(g0_ptr + at, tl.load(g_ptr + at, mask=take), mask=take)
    d0 = tl.load(d0_ptr + rows, mask=row_ok, other=0.0)
    tl.store(d0_ptr + rows, tl.where(accept, d, d0), mask=row_ok)

    n_diverge = tl.load(n_diverge_ptr + rows, mask=row_ok, other=0)
    tl.store(n_diverge_ptr + rows, n_diverge + tl.where(finite, 0, 1).to(tl.int64), mask=row_ok)
    n_accept = tl.load(n_accept_ptr + rows, mask=row_ok, other=0) + accept.to(tl.int64)
    tl.store(n_accept_ptr + rows, n_accept, mask=row_ok)
    if CUMULATIVE:
        stat = n_accept.to(tl.float64) / scalar_f64(t, t_at_ptr, T_AT)
    else:
        stat = tl.load(accept_stat_ptr + rows, mask=row_ok, other=0.0)
        stat = stat * EMA_DECAY + (1.0 - EMA_DECAY) * accept.to(tl.float64)
    tl.store(accept_stat_ptr + rows, stat, mask=row_ok)
    if ADAPT:
        eps = tl.load(eps_ptr + rows, mask=row_ok, other=1.0)
        factor = tl.where(stat > as_float64(target), as_float64(eps_grow), as_float64(eps_shrink))  # float64 factors
        eps = tl.minimum(tl.maximum(eps * factor, EPS_MIN), EPS_MAX)
        tl.store(eps_ptr + rows, eps, mask=row_ok)
