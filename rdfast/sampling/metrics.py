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
