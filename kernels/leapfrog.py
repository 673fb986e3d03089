"""Leapfrog integration of Hamiltonian dynamics for U(z) = E(z) + β d(z), kinetic ½ pᵀM⁻¹p.

∇U = ∇E + β g with g = ∇_z d cached per row; ∇E = z (standard normal prior) unless a
prior gradient [B, K] is given. The step size ε [B] (float64) is rounded to the dtype T of
z before use, and β likewise in the kick, as the torch reference does. β and Δβ are kernel
arguments, or (BETA_AT / DBETA_AT) float64 numbers in memory read at launch.
  begin: logw −= Δβ·d0;  h0 = E(z0) + β d0 + K(p);  p −= ½ε ∇U(z0);  z = z0 + ε M⁻¹p
  step:  p −= ε ∇U(z);  z += ε M⁻¹p
  end:   p −= ½ε ∇U(z)
"""
import triton
import triton.language as tl

from rdfast.backends import spec

from . import metric
from .numerics import scalar_f64
from .tiles import column_tile, row_block


@triton.jit
def _grad_potential(z, g_ptr, prior_grad_ptr, at, mask, beta, HAS_PRIOR_GRAD: tl.constexpr):
    """∇U = ∇E + β g on one [R, C] tile (β already in the dtype of z)."""
    g = tl.load(g_ptr + at, mask=mask, other=0.0)
    if HAS_PRIOR_GRAD:
        prior_grad = tl.load(prior_grad_ptr + at, mask=mask, other=0.0)
    else:
        prior_grad = z
    return prior_grad + beta * g


@triton.jit
def leapfrog_begin_kernel(
    z0_ptr, g0_ptr, d0_ptr, p_ptr, z_ptr, logw_ptr, h0_ptr, eps_ptr, inv_mass_ptr, prior_energy_ptr, prior_grad_ptr,
    beta_at_ptr, dbeta_at_ptr, n_rows, n_cols, metric_chains, beta: tl.float64, dbeta: tl.float64,
    METRIC: tl.constexpr, HAS_PRIOR_ENERGY: tl.constexpr, HAS_PRIOR_GRAD: tl.constexpr, BETA_AT: tl.constexpr,
    DBETA_AT: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr,
):
    """Weight update, initial energy h0 [B], first half kick and first drift for BLOCK_ROWS rows."""
    dtype = z0_ptr.dtype.element_ty
    beta64 = scalar_f64(beta, beta_at_ptr, BETA_AT)
    beta_t = beta64.to(dtype)
    rows, row_ok, row_start = row_block(n_rows, n_cols, BLOCK_ROWS)  # [R], [R], [R, 1]
    eps = tl.load(eps_ptr + rows, mask=row_ok, other=0.0).to(dtype)[:, None]  # [R, 1]
    z_sq = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    kinetic = tl.zeros([BLOCK_ROWS], dtype=tl.float64)
    for start in range(0, n_cols, BLOCK_COLS):
        cols, mask, at = column_tile(row_ok, row_start, start, n_cols, BLOCK_COLS)  # [C], [R, C], [R, C]
        z0 = tl.load(z0_ptr + at, mask=mask, other=0.0)
        p = tl.load(p_ptr + at, mask=mask, other=0.0)
        if not HAS_PRIOR_ENERGY:
            z64 = z0.to(tl.float64)
            z_sq += tl.sum(z64 * z64, axis=1)
        m = metric.tile(inv_mass_ptr, rows, cols, n_cols, metric_chains, mask, METRIC)
        kinetic += tl.sum(metric.kinetic_terms(p, m), axis=1)
        p = p - 0.5 * eps * _grad_potential(z0, g0_ptr, prior_grad_ptr, at, mask, beta_t, HAS_PRIOR_GRAD)
        tl.store(p_ptr + at, p, mask=mask)
        tl.store(z_ptr + at, z0 + eps * metric.velocity(p, m), mask=mask)
    d0 = tl.load(d0_ptr + rows, mask=row_ok, other=0.0)
    h0 = metric.hamiltonian(prior_energy_ptr, rows, row_ok, z_sq, beta64, d0, kinetic, HAS_PRIOR_ENERGY)
    tl.store(h0_ptr + rows, h0, mask=row_ok)
    logw = tl.load(logw_ptr + rows, mask=row_ok, other=0.0)
    tl.store(logw_ptr + rows, logw - scalar_f64(dbeta, dbeta_at_ptr, DBETA_AT) * d0, mask=row_ok)


@triton.jit
def leapfrog_kick_kernel(
    z_ptr, g_ptr, p_ptr, eps_ptr, inv_mass_ptr, prior_grad_ptr, beta_at_ptr,
    n_rows, n_cols, metric_chains, beta: tl.float64,
    LAST: tl.constexpr, METRIC: tl.constexpr, HAS_PRIOR_GRAD: tl.constexpr, BETA_AT: tl.constexpr,
    BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr,
):
    """For BLOCK_ROWS rows: full kick then drift (p −= ε∇U; z += ε M⁻¹p), or with LAST the final
    half kick alone (p −= ½ε∇U)."""
    dtype = z_ptr.dtype.element_ty
    beta_t = scalar_f64(beta, beta_at_ptr, BETA_AT).to(dtype)
    rows, row_ok, row_start = row_block(n_rows, n_cols, BLOCK_ROWS)  # [R], [R], [R, 1]
    eps = tl.load(eps_ptr + rows, mask=row_ok, other=0.0).to(dtype)[:, None]  # [R, 1]
    for start in range(0, n_cols, BLOCK_COLS):
        cols, mask, at = column_tile(row_ok, row_start, start, n_cols, BLOCK_COLS)  # [C], [R, C], [R, C]
        z = tl.load(z_ptr + at, mask=mask, other=0.0)
        p = tl.load(p_ptr + at, mask=mask, other=0.0)
        grad = _grad_potential(z, g_ptr, prior_grad_ptr, at, mask, beta_t, HAS_PRIOR_GRAD)
        if LAST:
            p = p - 0.5 * eps * grad
        else:
            p = p - eps * grad
            m = metric.tile(inv_mass_ptr, rows, cols, n_cols, metric_chains, mask, METRIC)
            tl.store(z_ptr + at, z + eps * metric.velocity(p, m), mask=mask)
        tl.store(p_ptr + at, p, mask=mask)


# ---- launch: the arguments of the kernel above (``rdfast.backends.triton.prepare``) ----------

def prepare_leapfrog_begin(kw, bound, tiles):
    """(kernel, grid, arguments, constexprs) of leapfrog_begin: one program per BLOCK_ROWS rows."""
    B, K = bound.sizes["B"], bound.sizes["K"]
    block_rows, block_cols = tiles.blocks(B, K)
    eps = kw["eps"]
    beta, beta_at, beta_in_memory = tiles.scalar("leapfrog_begin", "beta", kw["beta"], eps)
    dbeta, dbeta_at, dbeta_in_memory = tiles.scalar("leapfrog_begin", "dbeta", kw["dbeta"], eps)
    pe, pg = kw["prior_energy"], kw["prior_grad"]
    layout, inv_mass, chains = spec.metric_arguments("leapfrog_begin", kw["metric"], bound)
    args = (kw["z0"], kw["g0"], kw["d0"], kw["p"], kw["z"], kw["logw"], kw["h0"], eps,
            kw["z0"] if inv_mass is None else inv_mass, kw["d0"] if pe is None else pe,
            kw["z0"] if pg is None else pg, beta_at, dbeta_at, B, K, chains, beta, dbeta)
    return leapfrog_begin_kernel, (tiles.cdiv(B, block_rows),), args, dict(
        METRIC=int(layout), HAS_PRIOR_ENERGY=pe is not None,
        HAS_PRIOR_GRAD=pg is not None, BETA_AT=beta_in_memory, DBETA_AT=dbeta_in_memory,
        BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)


def _prepare_kick(op, kw, bound, tiles):
    """The kick (and drift unless leapfrog_end) on z, g, p [B, K]: one program per BLOCK_ROWS rows."""
    B, K = bound.sizes["B"], bound.sizes["K"]
    block_rows, block_cols = tiles.blocks(B, K)
    beta, beta_at, beta_in_memory = tiles.scalar(op, "beta", kw["beta"], kw["eps"])
    pg = kw["prior_grad"]
    last = op == "leapfrog_end"
    layout, inv_mass, chains = spec.metric_arguments(op, None if last else kw["metric"], bound)
    args = (kw["z"], kw["g"], kw["p"], kw["eps"], kw["z"] if inv_mass is None else inv_mass,
            kw["z"] if pg is None else pg, beta_at, B, K, chains, beta)
    return leapfrog_kick_kernel, (tiles.cdiv(B, block_rows),), args, dict(
        LAST=last, METRIC=int(layout),
        HAS_PRIOR_GRAD=pg is not None, BETA_AT=beta_in_memory, BLOCK_ROWS=block_rows, BLOCK_COLS=block_cols)


def prepare_leapfrog_step(kw, bound, tiles):
    return _prepare_kick("leapfrog_step", kw, bound, tiles)


def prepare_leapfrog_end(kw, bound, tiles):
    return _prepare_kick("leapfrog_end", kw, bound, tiles)
