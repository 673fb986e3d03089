"""The metric M⁻¹ of the HMC kernels, per layout (``rdfast.backends.spec.MetricLayout``), on one
[R, C] tile of momenta: ``tile`` loads the metric's diagonal for the tile (1 for the identity),
``velocity`` is M⁻¹p and ``kinetic_terms`` are p ⊙ M⁻¹p in float64, whose row sums are 2K;
``hamiltonian`` is H = E + βd + K per row."""
import triton
import triton.language as tl

from rdfast.backends import spec

DIAGONAL = tl.constexpr(int(spec.MetricLayout.DIAGONAL))


@triton.jit
def tile(inv_mass_ptr, rows, cols, n_cols, n_chains, mask, METRIC: tl.constexpr):
    """M⁻¹'s diagonal on the tile: inv_mass[r // M, j] per item (DIAGONAL), else 1."""
    if METRIC == DIAGONAL:
        item_start = (rows // n_chains).to(tl.int64)[:, None] * n_cols  # [R, 1]
        m = tl.load(inv_mass_ptr + item_start + cols[None, :], mask=mask, other=1.0)
    else:
        m = 1.0
    return m


@triton.jit
def velocity(p, m):
    """M⁻¹p on a tile (exact for the identity: p · 1)."""
    return m * p


@triton.jit
def kinetic_terms(p, m):
    """p ⊙ M⁻¹p on a tile, in float64."""
    p64 = p.to(tl.float64)
    return p64 * p64 * m


@triton.jit
def hamiltonian(prior_energy_ptr, rows, row_ok, z_sq, beta, d, kinetic, HAS_PRIOR_ENERGY: tl.constexpr):
    """H = E(z) + β d + ½ Σ_j p_j (M⁻¹p)_j [R] in float64 from the rows' Σ_j z_j² (``z_sq``) and
    kinetic terms (``kinetic``): E = ½‖z‖², or with HAS_PRIOR_ENERGY the given prior energy."""
    if HAS_PRIOR_ENERGY:
        prior_energy = tl.load(prior_energy_ptr + rows, mask=row_ok, other=0.0)
    else:
        prior_energy = 0.5 * z_sq
    return prior_energy + beta * d + 0.5 * kinetic
