"""Metropolis end of an HMC transition, per row.

  H1 = E(z) + β d + K(p)  (float64; E = ½‖z‖² unless a prior energy [B] is given)
  accept = H1 finite ∧ log u < h0 − H1;  a non-finite H1 is a divergence (and a rejection)
  accepted rows: (z0, g0, d0) ← (z, g, d), by masked stores (a selection: rejected rows are
  neither read nor written, so a rejected NaN cannot leak)
  accepted = 1 or 0;  accept_prob = min(1, e^{h0 − H1}) (0 for a divergence)
  n_accept += accept;  n_diverge += ¬finite
β is a kernel argument, or (BETA_AT) a float64 number in memory read at launch.
"""
import triton
import triton.language as tl

from rdfast.backends import spec

from . import metric
from .numerics import is_finite, scalar_f64
from .tiles import column_tile, row_block


@triton.jit
def metropolis_kernel(
    z0_ptr, g0_ptr, d0_ptr, z_ptr, g_ptr, d_ptr, p_ptr, h0_ptr, u_ptr, accepted_ptr, accept_prob_ptr,
    n_accept_ptr, n_diverge_ptr, inv_mass_ptr, prior_energy_ptr, beta_at_ptr,
    n_rows, n_cols, metric_chains, beta: tl.float64,
    METRIC: tl.constexpr, HAS_PRIOR_ENERGY: tl.constexpr, BETA_AT: tl.constexpr,
    BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr,
):
    """Accept/reject BLOCK_ROWS proposals (z, g, d, p) against the states (z0, g0, d0) in place."""
    rows, row_ok, row_start = row_block(n_rows, n_cols, BLOCK_ROWS)  # [R], [R], [R, 1]
    z_sq = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    kinetic = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    for start in range(0, n_cols, BLOCK_COLS):
        cols, mask, at = column_tile(row_ok, row_start, start, n_cols, BLOCK_COLS)  # [C], [R, C], [R, C]
        if not HAS_PRIOR_ENERGY:
            z = tl.load(z_ptr + at, mask=mask, other=0.0).to(tl.float64)
            z_sq += tl.sum(z * z, axis=1)
        p = tl.load(p_ptr + at, mask=mask, other=0.0)
        m = metric.tile(inv_mass_ptr, rows, cols, n_cols, metric_chains, mask, METRIC)
        kinetic += tl.sum(metric.kinetic_terms(p, m), axis=1)
    d = tl.load(d_ptr + rows, mask=row_ok, other=0.0)
    h1 = metric.hamiltonian(prior_energy_ptr, rows, row_ok, z_sq, scalar_f64(beta, beta_at_ptr, BETA_AT), d, kinetic,
                     HAS_PRIOR_ENERGY)  # [R]
    finite = is_finite(h1)
    h0 = tl.load(h0_ptr + rows, mask=row_ok, other=0.0)
    u = tl.load(u_ptr + rows, mask=row_ok, other=1.0)
    accept = row_ok & finite & (tl.log(u) < h0 - h1)  # [R]

    for start in range(0, n_cols, BLOCK_COLS):
        _, take, at = column_tile(accept, row_start, start, n_cols, BLOCK_COLS)  # [R, C] of the accepted rows
        tl.store(z0_ptr + at, tl.load(z_ptr + at, mask=take), mask=take)
        tl.store(g0_ptr + at, tl.load(g_ptr + at, mask=take), mask=take)
    d0 = tl.load(d0_ptr + rows, mask=row_ok, other=0.0)
    tl.store(d0_ptr + rows, tl.where(accept, d, d0), mask=row_ok)

    n_diverge = tl.load(n_diverge_ptr + rows, mask=row_ok, other=0)
    tl.store(n_diverge_ptr + rows, n_diverge + tl.where(finite, 0, 1).to(tl.int64), mask=row_ok)
    n_accept = tl.load(n_accept_ptr + rows, mask=row_ok, other=0) + accept.to(tl.int64)
    tl.store(n_accept_ptr + rows, n_accept, mask=row_ok)
    tl.store(accepted_ptr + rows, accept.to(tl.float64), mask=row_ok)
    ratio = tl.exp(tl.where(finite, h0 - h1, 0.0))
    tl.store(accept_prob_ptr + rows, tl.where(finite, tl.where(ratio > 1.0, 1.0, ratio), 0.0), mask=row_ok)


# ---- launch: the arguments of the kernel above (``rdfast.backends.triton.prepare``) ----------

def prepare_metropolis(kw, bound, tiles):
    """(kernel, grid, arguments, constexprs) of metropolis: one program per BLOCK_ROWS rows."""
    B, K = bound.sizes["B"], bound.sizes["K"]
    block_rows, block_cols = tiles.blocks(B, K)
    beta, beta_at, beta_in_memory = tiles.scalar("metropolis", "beta", kw["beta"], kw["h0"])
    pe = kw["prior_energy"]
    layout, inv_mass, chains = spec.metric_arguments("metropolis", kw["metric"], bound)
    args = (kw["z0"], kw["g0"], kw["d0"], kw["z"], kw["g"], kw["d"], kw["p"], kw["h0"], kw["u"], kw["accepted"],
            kw["accept_prob"], kw["n_accept"], kw["n_diverge"], kw["z"] if inv_mass is None else inv_mass,
            kw["d"] if pe is None else pe, beta_at, B, K, chains, beta)
    return metropolis_kernel, (tiles.cdiv(B, block_rows),), args, dict(
        METRIC=int(layout), HAS_PRIOR_ENERGY=pe is not None,
        BETA_AT=beta_in_memory, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)
