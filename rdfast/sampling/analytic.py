"""Closed-form rate, distortion and log Z for a linear decoder f(z) = Wz + b (the oracle).

For a distortion c‖S(x − f(z))‖² + d0 (gaussian_nll with log-variance v: S = diag(e^{−v/2}),
c = ½, d0 = ½Σ_j (v_j + log 2π); squared_error: S = I, c = 1, d0 = 0) and p(z) = N(0, I),
the optimal channel at β is q*_β(z|x) = N(μ, Σ) with a = 2βc, W̃ = SW, x̃ = S(x − b):

    Σ = (I + a W̃ᵀW̃)⁻¹,  μ = a Σ W̃ᵀ x̃,
    rate R = ½(tr Σ + ‖μ‖² − K − log det Σ)                   (= KL(q*_β ‖ p))
    distortion D = d0 + c(‖x̃ − W̃μ‖² + tr(W̃ΣW̃ᵀ))           (= E_q* d)
    log Z_β = −R − βD.

Computed in float64 in the eigenbasis of W̃ᵀW̃ = V diag(λ) Vᵀ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class LinearGaussianRD:
    """Exact values: beta [R]; rate, distortion, log_z [R, N] float64."""

    beta: torch.Tensor
    rate: torch.Tensor
    distortion: torch.Tensor
    log_z: torch.Tensor


def linear_gaussian(W, b, x, betas, distortion: str = "gaussian_nll", logvar=0.0) -> LinearGaussianRD:
    """Exact RD quantities of f(z) = W z + b for data x [N, P] (or [N, *event]) at each β.

    W [P, K], b [P]; distortion "gaussian_nll" (log-variance ``logvar``: scalar or [P]) or
    "squared_error".
    """
    W = torch.as_tensor(W, dtype=torch.float64).detach().cpu()
    if W.dim() != 2:
        raise ValueError(f"W: expected a matrix [P, K], got shape {tuple(W.shape)}")
    P, K = W.shape
    b = torch.as_tensor(b, dtype=torch.float64).detach().cpu().reshape(-1)
    if b.numel() != P:
        raise ValueError(f"b: expected {P} values, got {b.numel()}")
    x = torch.as_tensor(x, dtype=torch.float64).detach().cpu()
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != P:
        raise ValueError(f"x: expected items of {P} numbers, got {x.shape[1]}")
    beta = torch.as_tensor(betas, dtype=torch.float64).reshape(-1).cpu()
    if not torch.isfinite(beta).all() or (beta < 0).any():
        raise ValueError("betas: expected nonnegative finite values")
    if distortion == "gaussian_nll":
        v = torch.as_tensor(logvar, dtype=torch.float64).detach().cpu().reshape(-1).expand(P)
        c, d0, s = 0.5, 0.5 * (v + math.log(2 * math.pi)).sum(), torch.exp(-0.5 * v)
    elif distortion == "squared_error":
        c, d0, s = 1.0, torch.tensor(0.0, dtype=torch.float64), torch.ones(P, dtype=torch.float64)
    else:
        raise ValueError(f"distortion: expected 'gaussian_nll' or 'squared_error', got {distortion!r}")
    Wt = s.unsqueeze(1) * W  # [P, K]
    xt = s * (x - b)  # [N, P]
    lam, V = torch.linalg.eigh(Wt.T @ Wt)  # [K], [K, K]
    lam = lam.clamp(min=0.0)
    y = (xt @ Wt) @ V  # [N, K] = Vᵀ W̃ᵀ x̃ per item
    a = (2.0 * c * beta).unsqueeze(1)  # [R, 1]
    shrink = 1.0 / (1.0 + a * lam)  # [R, K] eigenvalues of Σ
    mu = a.unsqueeze(2) * shrink.unsqueeze(1) * y  # [R, N, K] μ in the eigenbasis
    tr_sigma = shrink.sum(1, keepdim=True)  # [R, 1]
    logdet = torch.log(shrink).sum(1, keepdim=True)
    rate = 0.5 * (tr_sigma + (mu * mu).sum(2) - K - logdet)  # [R, N]
    resid = (xt * xt).sum(1) - 2.0 * (y * mu).sum(2) + (lam * mu * mu).sum(2)  # ‖x̃ − W̃μ‖²
    tr_wsw = (lam * shrink).sum(1, keepdim=True)
    dist = d0 + c * (resid + tr_wsw)
    return LinearGaussianRD(beta=beta, rate=rate, distortion=dist, log_z=-rate - beta.unsqueeze(1) * dist)
