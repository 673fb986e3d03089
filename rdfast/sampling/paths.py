"""Annealing paths: the base distribution the chains start from and how the targets move along β.

With E_β the potential's β-dependent base energy and d the distortion, every path has targets
f_β(z) ∝ e^{−E_β(z) − β d(z)}, f_0 normalised, and log-weight increments
log f_β(z) − log f_β'(z) = −Δβ·d(z) + Δβ·w(z) at the chains' old state:

* ``PriorPath``: E_β = −log p(z), w = 0 — from the prior to p(z) e^{−β d}: every point of an RD
  curve. The standard normal's E = ½‖z‖² is fused into the kernels.
* ``EncoderPath``: E_β = −(1 − β) log q(z|x) − β log p(z), w = log p(z) − log q(z|x) — the
  geometric path from an encoder's Gaussian q(z|x) to p(z) p(x|z) at β = 1 (d = −log p(x|z)),
  with the chains started from q (Wu et al. 2017): Ẑ is still an unbiased estimate of p(x), and
  fewer intermediate distributions reach the same accuracy when q is close to the posterior.
  Only β = 1 means a likelihood on this path: the RD curve runs from the prior.

A path also gives the base's diagonal precision at β (the metric model's λ at β = 0 plus the
path's own change: ``rdfast.sampling.metrics.PrecisionModel``) and the chains' initial states.
"""
from __future__ import annotations

import math

import torch

from . import priors, rng


class PriorPath:
    """f_β(z) ∝ p(z) e^{−β d(z)}, from the prior (``prior_precision``: λ0 [K] of the prior)."""

    def __init__(self, prior, prior_precision=None):
        self.prior, self.prior_precision = prior, prior_precision
        self.fused = bool(getattr(prior, "is_standard_normal", False))  # E = ½‖z‖² inside the kernels

    def energy_and_grad(self, z: torch.Tensor, beta) -> tuple:
        """(E_β(z) [B] float64, ∇E_β(z) [B, K]) = (−log p(z), −∇log p(z))."""
        return priors.energy_and_grad(self.prior, z)

    def grad(self, z: torch.Tensor, beta) -> torch.Tensor:
        """∇E_β(z) [B, K]."""
        return z if self.fused else self.energy_and_grad(z, beta)[1]

    def weight_term(self, z: torch.Tensor):
        """w(z) [B] of the log-weight increment Δβ·w (None: 0)."""
        return None

    def base_precision(self, beta) -> torch.Tensor:
        """The base's diagonal precision at β: λ0 [K]."""
        return self.prior_precision

    def initial_states(self, keys: rng.Keys, latent_dim: int, dtype) -> torch.Tensor:
        """z [B, K] drawn from the prior: from keyed noise, or ``prior.sample`` under a generator
        seeded by the seed and the first item."""
        items, M, K = keys.items, keys.n_chains, latent_dim
        if hasattr(self.prior, "from_noise"):
            return self.prior.from_noise(keys.normal(0, rng.STREAM_INIT, K), keys.uniform(0, rng.STREAM_INIT))
        with torch.random.fork_rng(devices=[items.device] if items.device.type == "cuda" else []):
            torch.manual_seed(keys.seed + int(items[0]))
            return self.prior.sample(items.numel() * M)


class EncoderPath(PriorPath):
    """f_β(z) ∝ q(z|x)^{1−β} (p(z) e^{−d(z)})^β with q = N(mean, diag e^{logvar}) per item
    (``mean``, ``logvar`` [N, K]), shared by its ``n_chains`` rows."""

    def __init__(self, prior, prior_precision, mean: torch.Tensor, logvar: torch.Tensor, n_chains: int):
        super().__init__(prior, prior_precision)
        self.fused = False
        self.n_chains = n_chains
        self.mean, self.logvar = mean, logvar  # [N, K] the encoder's q for each item
        self.q_precision = torch.exp(-logvar.double())  # [N, K]

    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        """[N, K] -> [B, K], row r reading item r // M."""
        return t.repeat_interleave(self.n_chains, 0)

    def _encoder_energy(self, z: torch.Tensor) -> tuple:
        """(−log q(z|x) [B] float64, −∇log q [B, K])."""
        mean, logvar = self._rows(self.mean.to(z.dtype)), self._rows(self.logvar.to(z.dtype))
        scaled = (z - mean) * torch.exp(-logvar)  # [B, K] (z − μ)/σ²
        energy = 0.5 * ((z - mean).double() * scaled.double()).sum(1) + 0.5 * logvar.double().sum(1) \
            + 0.5 * z.shape[1] * math.log(2 * math.pi)
        return energy, scaled

    def energy_and_grad(self, z: torch.Tensor, beta) -> tuple:
        """E_β = (1 − β)(−log q) + β(−log p) and its gradient."""
        eq, gq = self._encoder_energy(z)
        ep, gp = priors.energy_and_grad(self.prior, z)
        return eq + beta * (ep - eq), gq + beta * (gp - gq)

    def grad(self, z: torch.Tensor, beta) -> torch.Tensor:
        return self.energy_and_grad(z, beta)[1]

    def weight_term(self, z: torch.Tensor) -> torch.Tensor:
        """w = log p(z) − log q(z|x) [B] float64."""
        eq, _ = self._encoder_energy(z)
        ep, _ = priors.energy_and_grad(self.prior, z)
        return eq - ep

    def base_precision(self, beta) -> torch.Tensor:
        """(1 − β) e^{−logvar} + β λ0 [N, K]."""
        lam0 = self.prior_precision.to(self.q_precision.device)
        return self.q_precision + beta * (lam0 - self.q_precision)

    def initial_states(self, keys: rng.Keys, latent_dim: int, dtype) -> torch.Tensor:
        """z [B, K] ~ q(z|x): mean + e^{logvar/2} ξ with keyed standard normals ξ."""
        noise = keys.normal(0, rng.STREAM_INIT, latent_dim, dtype)
        return self._rows(self.mean.to(dtype)) + self._rows(torch.exp(0.5 * self.logvar).to(dtype)) * noise
