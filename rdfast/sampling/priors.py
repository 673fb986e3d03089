"""Priors p(z) over the latent space.

The standard normal is fused into the kernels (energy ½‖z‖², gradient z). Any other prior
is an object with ``log_prob(z [rows, K]) -> [rows]`` (differentiable; its gradient comes
from autograd) and either ``from_noise(normal [rows, K], uniform [rows]) -> z`` (built-ins:
sampling from keyed noise, so results do not depend on batching) or ``sample(n) -> [n, K]``.
"""
from __future__ import annotations

import math

import torch


class StandardNormal:
    """p(z) = N(0, I_K)."""

    is_standard_normal = True

    def __init__(self, dim: int):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim: expected a positive int, got {dim!r}")
        self.dim = dim

    def from_noise(self, normal: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        return normal

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z * z).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)


class GaussianMixture:
    """p(z) = Σ_c w_c N(z; μ_c, diag σ_c²) with weights [C], means [C, K], stds [C, K] or [C]."""

    is_standard_normal = False

    def __init__(self, weights, means, stds):
        w = torch.as_tensor(weights, dtype=torch.float64)
        mu = torch.as_tensor(means, dtype=torch.float64)
        sd = torch.as_tensor(stds, dtype=torch.float64)
        if w.dim() != 1 or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights: expected a 1-D tensor of nonnegative finite numbers with a positive sum")
        if mu.dim() != 2 or mu.shape[0] != w.numel():
            raise ValueError(f"means: expected shape [{w.numel()}, K], got {tuple(mu.shape)}")
        if sd.dim() == 1:
            sd = sd.unsqueeze(1).expand_as(mu)
        if sd.shape != mu.shape or not (sd > 0).all() or not torch.isfinite(sd).all():
            raise ValueError(f"stds: expected positive finite values of shape [{w.numel()}] or {tuple(mu.shape)}")
        self.weights, self.means, self.stds = w / w.sum(), mu, sd.contiguous()
        self.dim = mu.shape[1]
        self._copies = {}  # (device, dtype) -> (log weights, means, stds, Σ_k log σ): no copy per call

    def __getstate__(self) -> dict:
        """The parameters, without the per-device copies (for pickles and checkpoint fingerprints)."""
        return {name: value for name, value in vars(self).items() if name != "_copies"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _copies={})

    def _on(self, device, dtype):
        """The parameters on ``device`` in ``dtype``, copied once (a copy inside a CUDA-graph
        capture would be a host transfer, which a capture cannot hold)."""
        key = (device, dtype)
        if key not in self._copies:
            mu, sd = self.means.to(device, dtype), self.stds.to(device, dtype)
            self._copies[key] = (torch.log(self.weights).to(device, dtype), mu, sd, torch.log(sd).sum(-1))
        return self._copies[key]

    def from_noise(self, normal: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """Pick component c by inverting the CDF of the weights at ``uniform``; z = μ_c + σ_c ε."""
        cdf = torch.cumsum(self.weights, 0).to(uniform.device)
        comp = torch.searchsorted(cdf, uniform.double()).clamp_(max=self.weights.numel() - 1)  # [rows]
        mu = self.means.to(normal.device)[comp]
        sd = self.stds.to(normal.device)[comp]
        return (mu + sd * normal.double()).to(normal.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        logw, mu, sd, log_sd = self._on(z.device, z.dtype)
        zs = (z.unsqueeze(1) - mu) / sd  # [rows, C, K]
        comp = -0.5 * (zs * zs).sum(-1) - log_sd - 0.5 * self.dim * math.log(2 * math.pi)
        return torch.logsumexp(logw + comp, -1)


def check(prior, dim):
    """Resolve ``prior`` (None means the standard normal of dimension ``dim``)."""
    if prior is None:
        return StandardNormal(dim)
    if not callable(getattr(prior, "log_prob", None)) or not (
            callable(getattr(prior, "from_noise", None)) or callable(getattr(prior, "sample", None))):
        raise TypeError("prior: expected an object with log_prob(z) and from_noise(normal, uniform) or sample(n)")
    pdim = getattr(prior, "dim", dim)
    if pdim != dim:
        raise ValueError(f"prior: has dimension {pdim}, but latent_dim is {dim}")
    return prior


def energy_and_grad(prior, z: torch.Tensor):
    """(−log p(z) [rows] float64, −∇log p(z) [rows, K]) by autograd."""
    with torch.enable_grad():
        zr = z.detach().requires_grad_(True)
        lp = prior.log_prob(zr)
        (g,) = torch.autograd.grad(lp.sum(), zr)
    return (-lp.detach()).double().contiguous(), (-g).contiguous()
