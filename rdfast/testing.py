"""Small problems with known answers and the tolerance rule of the backend tests, for tests and
for checking an installation (or a new backend).

``linear_problem`` builds a linear decoder f(z) = Wz + b and data drawn from the model, for
which ``rdfast.analytic.linear_gaussian`` gives exact rate, distortion and log Z; with
``rowwise=True`` the decoder computes each row on its own (``RowwiseLinear``), so its bits do not
depend on how many rows are evaluated together (BLAS matrix products do: MKL rounds a product of
a few rows differently from the same rows inside a larger one).
``assert_matches_reference`` compares a backend's output with the reference's, the
flash-attention way: relative to the error of the same computation in lower precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

ATOL32 = 1e-6
ATOL64 = 1e-12


class RowwiseLinear(torch.nn.Module):
    """f(z) = Wz + b as an elementwise product and a sum over each row's own K latents: no BLAS,
    so a row's value and its vector-Jacobian product are the same bits in a batch of any size."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.weight, self.bias = torch.nn.Parameter(W, requires_grad=False), torch.nn.Parameter(b, requires_grad=False)
        self.latent_dim = W.shape[1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z.unsqueeze(-2) * self.weight).sum(-1) + self.bias  # [rows, P]


@dataclass
class LinearProblem:
    decoder: torch.nn.Module  # z [rows, K] -> x̂ [rows, P]: nn.Linear, or RowwiseLinear
    W: torch.Tensor  # [P, K]
    b: torch.Tensor  # [P]
    x: torch.Tensor  # [N, P]
    logvar: float


def linear_problem(latent_dim: int = 2, data_dim: int = 6, n_items: int = 4, logvar: float = -1.0,
                   dtype=torch.float64, seed: int = 0, rowwise: bool = False) -> LinearProblem:
    """W with entries N(0, 0.5²), b ~ N(0, 0.1²), x = W z + b + e^{logvar/2} ε with z, ε ~ N(0, I)."""
    gen = torch.Generator().manual_seed(seed)
    W = 0.5 * torch.randn(data_dim, latent_dim, generator=gen, dtype=torch.float64)
    b = 0.1 * torch.randn(data_dim, generator=gen, dtype=torch.float64)
    z = torch.randn(n_items, latent_dim, generator=gen, dtype=torch.float64)
    noise = torch.randn(n_items, data_dim, generator=gen, dtype=torch.float64)
    x = z @ W.T + b + torch.exp(torch.tensor(0.5 * logvar)) * noise
    if rowwise:
        decoder = RowwiseLinear(W.to(dtype), b.to(dtype))
    else:
        decoder = torch.nn.Linear(latent_dim, data_dim).to(dtype)
        with torch.no_grad():
            decoder.weight.copy_(W)
            decoder.bias.copy_(b)
        decoder.requires_grad_(False)
    return LinearProblem(decoder, W, b, x.to(dtype), logvar)


def assert_matches_reference(name: str, out: torch.Tensor, ref: torch.Tensor, ref64: torch.Tensor, dtype,
                             exact: bool = False) -> None:
    """``out`` of a backend against the reference on the same inputs in the same dtype (``ref``)
    and cast to float64 (``ref64``). Integer arrays and ``exact`` ones must equal ``ref``; float
    arrays must have their non-finite values at the same places with the same values, and
    elsewhere |out − ref64| ≤ 2·|ref − ref64| + 1e-6·(1 + |ref64|) in float32 (the error of the
    reference itself in float32, plus a little), |out − ref64| ≤ 1e-12·(1 + |ref64|) in float64."""
    out = out.cpu()
    if exact or not out.is_floating_point():
        assert torch.equal(out.nan_to_num(), ref.cpu().nan_to_num()), f"{name}: {out} != {ref}"
        assert torch.equal(out.isnan(), ref.cpu().isnan()) if out.is_floating_point() else True, f"{name}: NaNs differ"
        return
    out, ref, ref64 = out.double(), ref.cpu().double(), ref64.cpu().double()
    finite = torch.isfinite(ref64)
    assert torch.equal(torch.isfinite(out), finite), f"{name}: non-finite values at other places"
    assert torch.equal(out[~finite].nan_to_num(), ref64[~finite].nan_to_num()), f"{name}: other non-finite values"
    o, r, r_t = out[finite], ref64[finite], ref[finite]
    if dtype == torch.float32:
        bound = 2 * (r_t - r).abs() + ATOL32 * (1 + r.abs())
    else:
        bound = ATOL64 * (1 + r.abs())
    err = (o - r).abs()
    assert (err <= bound).all(), f"{name}: max error {(err - bound).max().item():.3g} over the bound"
