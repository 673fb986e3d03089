"""Reference backend: the fused operations of ``rdfast.backends.spec`` in eager PyTorch.

This module is the normative twin of every compiled backend (C++, CUDA, Triton): each
operation here defines, element by element, what the others must compute, and the tests
compare the others against it. It takes any metric object (``rdfast.sampling.metrics``: its
``kinetic`` and ``velocity`` in torch ops), so a metric no kernel fuses runs here on any
device. Its arguments are not checked (callers build them); ``rdfast.ops`` checks first.

Notation: ``N`` items, ``M`` chains per item, ``B = N*M`` rows (data-major: row
``r = n*M + m``), ``K`` latent size, ``P`` data size. ``T`` is the compute dtype
(float32 or float64) of ``z``, ``p``, gradients, data and decoder outputs; per-row
scalars (distortion, energies, log-weights, step sizes, accept indicators) are float64.
"""
from __future__ import annotations

import functools
import math

import torch

from .spec import LOG_2PI, OPS, call_arguments

name = "torch"
METRIC_LAYOUTS = None  # any metric: its own methods


def _rows_of_items(x: torch.Tensor, n_chains: int) -> torch.Tensor:
    """x [N, P] -> [N, M, P] view (stride 0 over chains): the data is never copied."""
    return x.unsqueeze(1).expand(x.shape[0], n_chains, x.shape[1])


def distortion(kind, x, xhat, logvar, d, grad_xhat, grad_logvar, n_chains):
    """Write d [B] (float64) and ∂d/∂x̂ [B, P] (and ∂d/∂v [B, P] for per-row log-variance).

    x [N, P]; xhat [B, P]; logvar None | [1] | [P] | [B, P]; row r reads x[r // M].
      gaussian_nll:  d = ½ Σ_j (x_j − x̂_j)² e^{−v_j} + v_j + log 2π  (logvar None: v = 0)
                     ∂d/∂x̂ = (x̂ − x) e^{−v};  ∂d/∂v = ½ (1 − (x − x̂)² e^{−v})
      bernoulli_nll: d = Σ_j softplus(x̂_j) − x_j x̂_j  (x̂ are logits);  ∂d/∂x̂ = σ(x̂) − x
      squared_error: d = Σ_j (x_j − x̂_j)²;  ∂d/∂x̂ = 2 (x̂ − x)
    """
    N, P = x.shape
    xh = xhat.view(N, n_chains, P)  # [N, M, P]
    xr = _rows_of_items(x, n_chains)  # [N, M, P]
    gx = grad_xhat.view(N, n_chains, P)
    if kind == "gaussian_nll":
        if logvar is None:
            logvar = torch.zeros(1, dtype=x.dtype, device=x.device)
        v = logvar.view(N, n_chains, P) if logvar.dim() == 2 else logvar.expand(P)
        diff = xh - xr
        prec = torch.exp(-v)
        sq = diff * diff * prec
        terms = sq.double() + v.double() + LOG_2PI  # [N, M, P]
        d.copy_(0.5 * terms.sum(-1).reshape(-1))
        gx.copy_(diff * prec)
        if logvar.dim() == 2:
            grad_logvar.view(N, n_chains, P).copy_(0.5 * (1.0 - sq))
    elif kind == "bernoulli_nll":
        terms = torch.nn.functional.softplus(xh) - xr * xh
        d.copy_(terms.double().sum(-1).reshape(-1))
        gx.copy_(torch.sigmoid(xh) - xr)
    elif kind == "squared_error":
        diff = xh - xr
        d.copy_((diff * diff).double().sum(-1).reshape(-1))
        gx.copy_(2.0 * diff)
    else:
        raise ValueError(f"kind: unknown built-in distortion {kind!r}")


def _energy_prior(z, prior_energy):
    """−log p(z) up to a constant: ½‖z‖² for the standard normal, else the given [B]."""
    if prior_energy is None:
        return 0.5 * (z.double() ** 2).sum(1)
    return prior_energy


def _kinetic(p, metric):
    """K(p) = ½ pᵀM⁻¹p [B] float64 (identity: ½‖p‖²)."""
    return 0.5 * (p.double() ** 2).sum(1) if metric is None else metric.kinetic(p)


def _velocity(p, metric):
    """M⁻¹p [B, K] (identity: p)."""
    return p if metric is None else metric.velocity(p)


def _grad_u(z, g, beta, prior_grad):
    """∇U(z) = −∇log p(z) + β ∇d(z) in the compute dtype; [B, K]."""
    pg = z if prior_grad is None else prior_grad
    return pg + beta * g


def leapfrog_begin(z0, g0, d0, p, z, logw, h0, beta, dbeta, eps, metric=None, prior_energy=None, prior_grad=None):
    """Weight update, initial energy, first half kick and first drift.

    logw −= Δβ · d0;  h0 = E(z0) + β d0 + K(p);  p −= ½ε ∇U(z0);  z = z0 + ε M⁻¹p.
    z0, g0, p, z [B, K]; d0, logw, h0, eps [B] float64; p holds fresh momenta on entry.
    """
    logw.sub_(dbeta * d0)
    h0.copy_(_energy_prior(z0, prior_energy) + beta * d0 + _kinetic(p, metric))
    e = eps.to(z0.dtype).unsqueeze(1)  # [B, 1]
    p.sub_(0.5 * e * _grad_u(z0, g0, beta, prior_grad))
    torch.addcmul(z0, e, _velocity(p, metric), out=z)


def leapfrog_step(z, g, p, beta, eps, metric=None, prior_grad=None):
    """Full kick then drift: p −= ε ∇U(z);  z += ε M⁻¹p.  g = ∇d(z) [B, K]."""
    e = eps.to(z.dtype).unsqueeze(1)
    p.sub_(e * _grad_u(z, g, beta, prior_grad))
    z.add_(e * _velocity(p, metric))


def leapfrog_end(z, g, p, beta, eps, prior_grad=None):
    """Final half kick: p −= ½ε ∇U(z)."""
    e = eps.to(z.dtype).unsqueeze(1)
    p.sub_(0.5 * e * _grad_u(z, g, beta, prior_grad))


def metropolis(z0, g0, d0, z, g, d, p, h0, u, beta, accepted, accept_prob, n_accept, n_diverge, metric=None,
               prior_energy=None):
    """Accept/reject the proposal (z, g, d, p) against the current state (z0, g0, d0) in place.

    H1 = E(z) + β d + K(p) (float64); a non-finite H1 is a divergence and a rejection;
    accept iff log u < h0 − H1. Accepted rows copy (z, g, d) into (z0, g0, d0) by selection.
    accepted [B] = 1.0 or 0.0; accept_prob [B] = min(1, e^{h0 − H1}), 0 for a divergence;
    n_accept += accepted; n_diverge += ¬finite(H1).
    """
    h1 = _energy_prior(z, prior_energy) + beta * d + _kinetic(p, metric)
    finite = torch.isfinite(h1)
    accept = finite & (torch.log(u) < h0 - h1)  # [B] bool
    n_diverge.add_((~finite).long())
    z0.copy_(torch.where(accept.unsqueeze(1), z, z0))
    g0.copy_(torch.where(accept.unsqueeze(1), g, g0))
    d0.copy_(torch.where(accept, d, d0))
    n_accept.add_(accept.long())
    accepted.copy_(accept)
    accept_prob.copy_(torch.where(finite, torch.exp(h0 - h1).clamp(max=1.0), torch.zeros_like(h1)))


def record(logw, d, n_chains, log_z, dist, ess):
    """Per-item estimates from B rows (float64 in, float64 out, [N] each).

    log Ẑ = logsumexp_m log w − log M;  w̃ = softmax_m log w;  D̂ = Σ_m w̃ d (rows of zero
    weight contribute 0 even if d is not finite);  ESS = 1 / Σ_m w̃².
    """
    lw = logw.view(-1, n_chains)  # [N, M]
    lse = torch.logsumexp(lw, 1)  # [N]
    log_z.copy_(lse - math.log(n_chains))
    w = torch.exp(lw - lse.unsqueeze(1))  # [N, M]
    dm = d.view(-1, n_chains)
    dist.copy_(torch.where(w > 0, w * dm, torch.zeros_like(w)).sum(1))
    ess.copy_(1.0 / (w * w).sum(1))


def prepare(op: str, **kw):
    """A launch of ``op`` with these arguments (as the compiled backends' ``prepare``)."""
    if op not in OPS:
        raise ValueError(f"op: expected one of {list(OPS)}, got {op!r}")
    return functools.partial(globals()[op], **call_arguments(op, (), kw))
