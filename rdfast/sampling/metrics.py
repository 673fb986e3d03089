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
