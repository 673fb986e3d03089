"""Metrics of HMC: the inverse mass matrix M⁻¹ that shapes the momenta and the drift.

A metric has ``momentum(noise) -> p`` (p ~ N(0, M) from standard normals [B, K]), ``kinetic(p)
-> [B]`` float64 (K(p) = ½ pᵀM⁻¹p) and ``velocity(p) -> [B, K]`` (M⁻¹p, the drift direction), all
in torch ops on the chains' device, and ``layout``: a ``spec.MetricLayout`` when the compiled
kernels fuse it, else None. A new metric is one class here: it runs on every backend, its
leapfrog and Metropolis steps going through the reference ops (torch ops, capturable in CUDA
graphs) until a kernel fuses its layout. ``rdfast.sampling.hmc`` picks the ops.
"""
from __future__ import annotations

import torch

from ..backends.spec import MetricLayout
from .rotation import rotated_diagonal


class IdentityMetric:
    """M = I:  p ~ N(0, I),  K(p) = ½‖p‖²,  drift z += ε p."""

    layout = MetricLayout.IDENTITY

    def momentum(self, noise: torch.Tensor) -> torch.Tensor:
        return noise

    def kinetic(self, p: torch.Tensor) -> torch.Tensor:
        return 0.5 * (p.double() ** 2).sum(1)

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        return p


class DiagonalMetric:
    """M⁻¹ = diag(m_n) for the chains of item n: m = ``inv_mass`` [N, K] in the states' dtype,
    shared by each item's ``n_chains`` rows.  p ~ N(0, diag(1/m)),  K(p) = ½ Σ_j m_j p_j²,
    drift z += ε m ⊙ p. Prepared launches read ``inv_mass``'s buffer: change it in place."""

    layout = MetricLayout.DIAGONAL

    def __init__(self, inv_mass: torch.Tensor, n_chains: int):
        self.inv_mass, self.n_chains = inv_mass, n_chains

    def _per_row(self, t: torch.Tensor) -> tuple:
        """t [B, K] as [N, M, K], and m as [N, 1, K]."""
        N, K = self.inv_mass.shape
        return t.view(N, self.n_chains, K), self.inv_mass.unsqueeze(1)

    def momentum(self, noise: torch.Tensor) -> torch.Tensor:
        rows, m = self._per_row(noise)
        return (rows / torch.sqrt(m)).reshape(noise.shape)

    def kinetic(self, p: torch.Tensor) -> torch.Tensor:
        rows, m = self._per_row(p)
        return 0.5 * (rows.double() ** 2 * m.double()).sum(2).reshape(-1)

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        rows, m = self._per_row(p)
        return (m * rows).reshape(p.shape)


def prior_precision(prior, dim: int, n: int = 4096) -> torch.Tensor:
    """λ0 [K] float64: the prior's diagonal precision, √(Var[∇E] / Var[z]) over n samples drawn with a
    fixed generator (the same prior always gives the same λ0); exactly 1 for the standard normal."""
    if getattr(prior, "is_standard_normal", False):
        return torch.ones(dim, dtype=torch.float64)
    from .priors import energy_and_grad

    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    z = (prior.from_noise(normal, torch.rand(n, generator=gen, dtype=torch.float64)) if hasattr(prior, "from_noise")
         else prior.sample(n)).double()
    _, grad = energy_and_grad(prior, z)
    return torch.sqrt(grad.double().var(0) / z.var(0))


class PrecisionModel:
    """The diagonal metric of each item as a function of β: M⁻¹(β) = 1 / (λ_base(β) + β h).

    λ_base(β) is the path's base precision (``rdfast.sampling.paths``: the prior's λ0 [K], or the
    encoder path's (1 − β) λq + β λ0) and h [N, K] ≥ 0 the curvature of d per unit β, so that
    λ_base + β h approximates the diagonal precision of the target f_β; exact for a linear decoder
    with squared error or a Gaussian likelihood whose Jacobian has orthogonal columns, and first
    order in general. ``refresh(β)`` writes M⁻¹(β) into ``metric.inv_mass`` in place (torch ops on
    the device: capturable). Round 2 sets ``curvature`` per knot (``rdfast.sampling.tuning``);
    round 1 estimates it from the chains by ``observe``:

        λ̂ = √(Var[∇U] / Var[z])   per item and coordinate, over its chains (a moving average over
        transitions), the diagonal that minimises the Fisher divergence of a Gaussian to the
        chains' distribution (exact for a Gaussian target, and unchanged when the chains are
        under-dispersed: both variances shrink alike); h = max((λ̂ − λ_base(β̄)) / β̄, 0) at the
        mean β̄ of the observations, once the averages hold ``SETTLED`` of their weight (at the
        start, and after ``rotate``, h keeps its value until then).
    """

    DECAY = 0.9  # per transition, of the moving averages of the moments
    SETTLED = 0.5  # the averages' weight (1 − 0.9ⁿ after n transitions) from which h is updated: 7 transitions

    def __init__(self, path, n_items: int, n_chains: int, latent_dim: int, dtype, device):
        f64 = dict(dtype=torch.float64, device=device)
        K = latent_dim
        self.path = path
        self.curvature = torch.zeros(n_items, K, **f64)  # [N, K] h
        self._precision = torch.empty(n_items, K, **f64)  # [N, K] λ_base + β h
        self.metric = DiagonalMetric(torch.empty(n_items, K, dtype=dtype, device=device), n_chains)
        self.refresh(0.0)
        self.moments = {name: torch.zeros(n_items, K, **f64) for name in ("z", "z2", "u", "u2")}  # EMA, [N, K]
        self.weight = torch.zeros((), **f64)  # EMA of the observation count (bias correction)
        self.beta_mean = torch.zeros((), **f64)  # EMA of β (bias corrected by weight)

    def _base(self, beta) -> torch.Tensor:
        return self.path.base_precision(beta).to(self.curvature.device)

    def refresh(self, beta) -> None:
        """M⁻¹ ← 1 / (λ_base(β) + β h) at β (a number or a 0-d float64 device tensor)."""
        torch.mul(self.curvature, beta, out=self._precision)
        self._precision.add_(self._base(beta))
        self.metric.inv_mass.copy_(torch.reciprocal(self._precision))

    def observe(self, z: torch.Tensor, prior_grad: torch.Tensor, g: torch.Tensor, beta) -> None:
        """Add the chains' states z [B, K] at β, with ∇U = ``prior_grad`` + β g, to the moments and
        update h (unless the chains of an item coincide)."""
        N, K = self.curvature.shape
        zz = z.double().view(N, -1, K)  # [N, M, K]
        u = (prior_grad.double() + beta * g.double()).view(N, -1, K)  # [N, M, K] ∇U
        keep, add = self.DECAY, 1.0 - self.DECAY
        for name, value in (("z", zz.mean(1)), ("z2", (zz * zz).mean(1)), ("u", u.mean(1)), ("u2", (u * u).mean(1))):
            self.moments[name].mul_(keep).add_(value, alpha=add)
        self.weight.mul_(keep).add_(add)
        self.beta_mean.mul_(keep).add_(add * beta)
        m = {name: value / self.weight for name, value in self.moments.items()}
        var_z = (m["z2"] - m["z"] ** 2).clamp_(min=0.0)
        var_u = (m["u2"] - m["u"] ** 2).clamp_(min=0.0)
        precision = torch.sqrt(var_u / var_z)  # [N, K] λ̂ (NaN or inf where var_z = 0)
        beta_mean = self.beta_mean / self.weight
        h = ((precision - self._base(beta_mean)) / beta_mean).clamp_(min=0.0)
        usable = torch.isfinite(h) & (beta_mean > 0) & (self.weight >= self.SETTLED)
        self.curvature.copy_(torch.where(usable, h, self.curvature))

    def rotate(self, change: torch.Tensor) -> None:
        """The chains moved to new coordinates (``rotation.Rotation.change_to``: R [N, K, K]): h
        becomes the diagonal of R diag(h) Rᵀ and the moving averages, kept per coordinate, start
        again."""
        self.curvature.copy_(rotated_diagonal(change, self.curvature))
        for value in (*self.moments.values(), self.weight, self.beta_mean):
            value.zero_()

    def to_dict(self) -> dict:
        return {"curvature": self.curvature, "inv_mass": self.metric.inv_mass, "weight": self.weight,
                "beta_mean": self.beta_mean, **{f"moment_{k}": v for k, v in self.moments.items()}}

    def load(self, saved: dict) -> None:
        self.curvature.copy_(saved["curvature"])
        self.metric.inv_mass.copy_(saved["inv_mass"])
        self.weight.copy_(saved["weight"])
        self.beta_mean.copy_(saved["beta_mean"])
        for name in self.moments:
            self.moments[name].copy_(saved[f"moment_{name}"])
