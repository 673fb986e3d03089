"""The published AIS/HMC loop's cost structure (PUBLISHED_METHOD.md §3–4), in its best case.

Re-implemented from that description (not from the published code). Target at inverse
temperature t, with the Gaussian constants included:

    log f_t(z) = log N(z; 0, I) + t · log N(x; f(z), σ² I)

or, for Bernoulli logits (the common open-source VAE BDMC loop, same structure),
t · Σ_j −BCE-with-logits(f(z)_j, x_j) as the likelihood term.

Per transition (t0 → t1), for N = C·B chains tiled chain-major (row c·B + b holds item b):

    log w += log f_t1(z) − log f_t0(z)                      2 forwards, no grad
    v0 ~ N(0, I);  g = ∇U(z0) (autograd of the full target)  1 forward + 1 backward
    v = v0 − ½εg;  z = z0;  L × { z += εv;  g = ∇U(z);  v −= εg (not the last) }
    v −= ½εg;  v = −v                                         L forwards + L backwards
    H0 = U(z0) + K(v0);  H1 = U(z) + K(v)                     2 forwards, no grad
    a = [exp(H0 − H1) > u];  z = a·z + (1 − a)·z0           arithmetic blend
    n_acc += a;  r = n_acc / j;  ε ← clamp(ε · (1.02 if r > 0.65 else 0.98), 1e-4, 0.5)

so L + 5 decoder forwards and L + 1 backwards. ∇U is clamped elementwise to ±N·k·100 and
marked ``requires_grad_()``, so the leapfrog arithmetic is recorded by autograd. Every
evaluation builds full N×D log-variance temporaries and fresh constant tensors, as the
published code does, and the acceptance monitor's test. Left out (its best case):
``gc.collect()``, ``empty_cache()``, the per-transition ``torch.save`` of ε, tqdm and the
monitor's warning prints.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def log_normal(x, mean, logvar):
    """Per row −½ [Σ_j (v_j + (x_j − m_j)² e^{−v_j}) + D log 2π]; logvar broadcast to x's full
    shape (a second full-size temporary, as published)."""
    log_2pi = torch.log(torch.tensor(2.0 * math.pi, dtype=x.dtype, device=x.device))
    logvar = torch.zeros_like(x) + logvar
    return -0.5 * ((logvar + (x - mean) ** 2 * torch.exp(-logvar)).sum(1) + x.shape[1] * log_2pi)


class PublishedAIS:
    """State and transitions of the published loop for data x [B, D], latent size k, C chains per
    item and a distortion ("gaussian_nll" with log-variance ``logvar``, or "bernoulli_nll")."""

    def __init__(self, decoder, x, latent_dim: int, n_chains: int, distortion: str, logvar, leapfrog_steps: int,
                 seed: int = 6):
        if distortion not in ("gaussian_nll", "bernoulli_nll"):
            raise ValueError(f"distortion: the published loop has gaussian_nll and bernoulli_nll, got {distortion!r}")
        torch.manual_seed(seed)
        self.decoder, self.L, self.logvar, self.distortion = decoder, leapfrog_steps, logvar, distortion
        B, D = x.shape
        self.x = x.unsqueeze(0).repeat(n_chains, 1, 1).view(-1, D)  # [N, D] chain-major
        self.N, self.k = n_chains * B, latent_dim
        self.like = dict(dtype=x.dtype, device=x.device)
        self.z = torch.randn(self.N, self.k, **self.like)  # [N, k]
        self.logw = torch.zeros(self.N, **self.like)
        self.eps = torch.full((self.N,), 0.01, **self.like)
        self.n_acc = torch.zeros(self.N, **self.like)
        self.j = 0
        self.low_acceptance = False

    def log_target(self, z, t):
        """log f_t(z) [N]."""
        mean = self.decoder(z).reshape(self.N, -1)
        prior = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        if self.distortion == "bernoulli_nll":
            loglik = -F.binary_cross_entropy_with_logits(mean, self.x, reduction="none").sum(1)
        else:
            lv = torch.zeros(self.N, self.x.shape[1], **self.like) + self.logvar  # [N, D]
            loglik = log_normal(self.x, mean, lv)
        return prior + t * loglik

    def kinetic(self, v):
        """K(v) = −log N(v; 0, I)."""
        return -log_normal(v, torch.zeros_like(v), torch.zeros_like(v))

    def grad_u(self, z, t):
        """∇U_t(z) by autograd of the full target, clamped, then marked as requiring grad."""
        if not z.requires_grad:
            z = z.requires_grad_()
        u = -self.log_target(z, t)
        (g,) = torch.autograd.grad(u, z, grad_outputs=torch.ones(self.N, **self.like))
        bound = self.N * self.k * 100.0
        return torch.clamp(g, -bound, bound).requires_grad_()

    def trajectory(self, z0, v0, t):
        eps = self.eps.unsqueeze(1)  # [N, 1]
        g = self.grad_u(z0.detach().clone(), t)
        v = v0 - 0.5 * eps * g
        z = z0
        for i in range(1, self.L + 1):
            z = z + eps * v
            g = self.grad_u(z, t)
            if i < self.L:
                v = v - eps * g
        v = v - 0.5 * eps * g
        return z.detach(), (-v).detach()

    def transition(self, t0: float, t1: float):
        self.j += 1
        with torch.no_grad():
            self.logw += self.log_target(self.z, t1) - self.log_target(self.z, t0)
        z0 = self.z
        v0 = torch.randn(self.N, self.k, **self.like)
        z1, v1 = self.trajectory(z0, v0, t1)
        with torch.no_grad():
            h0 = -self.log_target(z0, t1) + self.kinetic(v0)
            h1 = -self.log_target(z1, t1) + self.kinetic(v1)
            accept = (torch.exp(h0 - h1) > torch.rand(self.N, **self.like)).to(z0.dtype)
            a = accept.unsqueeze(1)
            self.z = a * z1 + (1 - a) * z0
            self.n_acc += accept
            rate = self.n_acc / self.j
            self.low_acceptance = bool(rate.mean() < 0.60)  # the monitor's test (its print left out)
            factor = torch.where(rate > 0.65, torch.tensor(1.02, **self.like), torch.tensor(0.98, **self.like))
            self.eps = torch.clamp(self.eps * factor, 1e-4, 0.5)

    def run(self, betas):
        """Transitions along consecutive pairs of ``betas``."""
        for t0, t1 in zip(betas[:-1], betas[1:]):
            self.transition(t0, t1)
