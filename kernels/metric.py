"""The metric M⁻¹ of the HMC kernels, per layout (``rdfast.backends.spec.MetricLayout``): the
drift velocity M⁻¹p and the terms p ⊙ M⁻¹p of the kinetic energy K = ½ Σ_j p_j (M⁻¹p)_j, on one
[R, C] tile of momenta (float64 terms)."""
import triton
import triton.language as tl

from rdfast.backends import spec

IDENTITY = tl.constexpr(int(spec.MetricLayout.IDENTITY))


@triton.jit
def velocity(p, METRIC: tl.constexpr):
    """M⁻¹p on a tile."""
    return p


@triton.jit
def kinetic_terms(p, METRIC: tl.constexpr):
    """p ⊙ M⁻¹p on a tile, in float64."""
    p64 = p.to(tl.float64)
    return p64 * p64
