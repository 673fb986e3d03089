"""Small problems with known answers, for tests and for checking an installation.

``linear_problem`` builds a linear decoder f(z) = Wz + b and data drawn from the model, for
which ``rdfast.analytic.linear_gaussian`` gives exact rate, distortion and log Z.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LinearProblem:
    decoder: torch.nn.Linear  # z [rows, K] -> x̂ [rows, P]
    W: torch.Tensor  # [P, K]
    b: torch.Tensor  # [P]
    x: torch.Tensor  # [N, P]
    logvar: float


def linear_problem(latent_dim: int = 2, data_dim: int = 6, n_items: int = 4, logvar: float = -1.0,
                   dtype=torch.float64, seed: int = 0) -> LinearProblem:
    """W with entries N(0, 0.5²), b ~ N(0, 0.1²), x = W z + b + e^{logvar/2} ε with z, ε ~ N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    W = 0.5 * torch.randn(data_dim, latent_dim, generator=gen, dtype=torch.float64)
    b = 0.1 * torch.randn(data_dim, generator=gen, dtype=torch.float64)
    z = torch.randn(n_items, latent_dim, generator=gen, dtype=torch.float64)
    noise = torch.randn(n_items, data_dim, generator=gen, dtype=torch.float64)
    x = z @ W.T + b + torch.exp(torch.tensor(0.5 * logvar)) * noise
    decoder = torch.nn.Linear(latent_dim, data_dim).to(dtype)
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    decoder.requires_grad_(False)
    return LinearProblem(decoder, W, b, x.to(dtype), logvar)
