"""The HMC transition kernel: a metric and a leapfrog integrator, on a typed chain state.

At inverse temperature β the target is f_β(z) ∝ p(z) e^{−β d(z)}, with potential
U(z) = E(z) + β d(z), E = −log p. One transition of every chain (DESIGN §2), with step size ε
per row and the metric's kinetic energy K(p) = ½ pᵀM⁻¹p:

    log w −= Δβ · d(z0)                                  (the weight first, at the old state)
    ε ← ε · U(1 − j, 1 + j)                              (jitter j ∈ [0, 1), per row, keyed)
    p0 ~ N(0, M);  p = p0 − ½ε ∇U(z0);  z = z0 + ε M⁻¹p
    repeat L − 1 times:  p −= ε ∇U(z);  z += ε M⁻¹p
    p −= ½ε ∇U(z)
    accept with probability min(1, exp(H0 − H1)), H = U + K; a non-finite H1 is a rejection

Each chain caches d and ∇d of its state (``ChainState``), so the weight, the first half kick
and H0 need no decoder call and a transition costs exactly L evaluations of d and ∇_z d. The
per-row work runs as prepared launches of the backend's fused ops (``rdfast.backends.spec``):
the compiled backend where it fuses the metric's layout, else the reference (torch ops). Random
numbers come from the keyed streams at the device clock's step, so nothing here reads device
memory on the host and a transition can be captured in a CUDA graph.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..backends import reference
from . import rng


@dataclass
class ChainState:
    """The state of B = N·M chains (rows data-major: row n·M + m is chain m of item n)."""

    z: torch.Tensor  # [B, K] T: current states
    g: torch.Tensor  # [B, K] T: ∇_z d(z), cached
    d: torch.Tensor  # [B] float64: d(z), cached
    logw: torch.Tensor  # [B] float64: log-weights
    eps: torch.Tensor  # [B] float64: step sizes
    n_accept: torch.Tensor  # [B] int64: accepted proposals
    n_diverge: torch.Tensor  # [B] int64: proposals with a non-finite energy (rejected)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, state: dict) -> "ChainState":
        return cls(**{f.name: state[f.name] for f in fields(cls)})


@dataclass
class TransitionInfo:
    """What the last transition reports, per row (views of buffers the next transition overwrites)."""

    accepted: torch.Tensor  # [B] float64: 1 or 0
    accept_prob: torch.Tensor  # [B] float64: min(1, e^{H0 − H1}), 0 for a divergence
    n_accept: torch.Tensor  # [B] int64: accepted proposals so far


def ops_for(backend, metric):
    """The backend's fused ops where they fuse the metric's layout, else the reference's."""
    layouts = backend.METRIC_LAYOUTS
    return backend if layouts is None or metric.layout in layouts else reference


class HMC:
    """HMC with ``leapfrog_steps`` L and ``metric`` for the rows of ``keys``; ``evaluate(z, d, g)``
    writes d(z) [B] and ∇_z d(z) [B, K]; ``path`` (``rdfast.sampling.paths``) gives the base
    energy E_β: the standard normal prior's is fused, any other is passed to the ops as E_β and
    ∇E_β, and a path's weight term w adds Δβ·w to the log-weights. ``jitter`` j: each transition of each row
    uses ε·U(1 − j, 1 + j) (on a near-Gaussian target a fixed ε·L makes trajectories nearly
    periodic); the uniform comes from the accept draw's counter, so it costs no draw."""

    def __init__(self, evaluate, backend, metric, leapfrog_steps: int, path, keys: rng.Keys, jitter: float = 0.0):
        self.evaluate, self.metric, self.L, self.path, self.keys = evaluate, metric, leapfrog_steps, path, keys
        self.jitter = jitter
        self.ops = ops_for(backend, metric)
        self.custom_prior = not path.fused

    def init(self, z: torch.Tensor, step_size: float) -> ChainState:
        """The state at z [B, K] with d and ∇d evaluated there, log w = 0 and ε = ``step_size``."""
        B = z.shape[0]
        f64 = dict(dtype=torch.float64, device=z.device)
        d, g = torch.empty(B, **f64), torch.empty_like(z)
        self.evaluate(z, d, g)
        counts = dict(dtype=torch.int64, device=z.device)
        return ChainState(z=z, g=g, d=d, logw=torch.zeros(B, **f64), eps=torch.full((B,), step_size, **f64),
                          n_accept=torch.zeros(B, **counts), n_diverge=torch.zeros(B, **counts))

    def transition(self, state: ChainState, clock) -> "Transition":
        """The transition of ``state`` at the clock's step k, β_k and Δβ_k, prepared once."""
        return Transition(self, state, clock)


class Transition:
    """One HMC transition of a state at the clock's current step, in place: ``step()`` runs it and
    leaves ``info``. The op launches are prepared here, once, on buffers made here."""

    def __init__(self, hmc: HMC, state: ChainState, clock):
        self.hmc, self.state, self.clock = hmc, state, clock
        z, d = state.z, state.d
        self.p, self.zp, self.gp = torch.empty_like(z), torch.empty_like(z), torch.empty_like(z)  # [B, K]
        self.dp, self.h0, self.u = torch.empty_like(d), torch.empty_like(d), torch.empty_like(d)  # [B]
        self.info = TransitionInfo(torch.empty_like(d), torch.empty_like(d), state.n_accept)
        self.eps = torch.empty_like(d) if hmc.jitter else state.eps  # [B] the step sizes of this transition
        self.noise = torch.empty_like(z)  # [B, K] standard normals, then p = the metric's momentum of them
        self.spread = torch.empty_like(d) if hmc.jitter else None  # [B] the jitter's uniforms
        self.draw_noise = hmc.keys.normal_into(clock.k, rng.STREAM_MOMENTUM, self.noise)
        self.draw_uniforms = hmc.keys.uniform_into(clock.k, rng.STREAM_ACCEPT, self.u, self.spread)
        prior0 = prior1 = {}
        if hmc.custom_prior:  # E_β and ∇E_β at the state (0) and at the proposal (1)
            self.pe0, self.pg0, self.pe1, self.pg1 = torch.empty_like(d), torch.empty_like(z), torch.empty_like(d), \
                torch.empty_like(z)
            prior0, prior1 = dict(prior_energy=self.pe0, prior_grad=self.pg0), dict(prior_grad=self.pg1)
        ops, metric, beta, eps = hmc.ops, hmc.metric, clock.beta, self.eps
        self.begin = ops.prepare("leapfrog_begin", z0=z, g0=state.g, d0=d, p=self.p, z=self.zp, logw=state.logw,
                                 h0=self.h0, beta=beta, dbeta=clock.dbeta, eps=eps, metric=metric, **prior0)
        self.kick_drift = ops.prepare("leapfrog_step", z=self.zp, g=self.gp, p=self.p, beta=beta, eps=eps,
                                      metric=metric, **prior1)
        self.last_kick = ops.prepare("leapfrog_end", z=self.zp, g=self.gp, p=self.p, beta=beta, eps=eps, **prior1)
        self.metropolis = ops.prepare(
            "metropolis", z0=z, g0=state.g, d0=d, z=self.zp, g=self.gp, d=self.dp, p=self.p, h0=self.h0, u=self.u,
            beta=beta, accepted=self.info.accepted, accept_prob=self.info.accept_prob, n_accept=state.n_accept,
            n_diverge=state.n_diverge, metric=metric, prior_energy=self.pe1 if hmc.custom_prior else None)

    def _prior_at(self, z, energy, grad):
        e, g = self.hmc.path.energy_and_grad(z, self.clock.beta)
        energy.copy_(e)
        grad.copy_(g)

    def step(self) -> None:
        hmc, state = self.hmc, self.state
        if hmc.jitter:
            self.draw_uniforms()
            torch.mul(state.eps, self.spread.mul_(2.0 * hmc.jitter).add_(1.0 - hmc.jitter), out=self.eps)
        self.draw_noise()
        self.p.copy_(hmc.metric.momentum(self.noise))
        if hmc.custom_prior:
            self._prior_at(state.z, self.pe0, self.pg0)
        term = hmc.path.weight_term(state.z)
        if term is not None:
            state.logw.add_(term * self.clock.dbeta)
        self.begin()
        for step in range(hmc.L):
            hmc.evaluate(self.zp, self.dp, self.gp)
            if hmc.custom_prior:
                self._prior_at(self.zp, self.pe1, self.pg1)
            (self.kick_drift if step < hmc.L - 1 else self.last_kick)()
        if not hmc.jitter:
            self.draw_uniforms()
        self.metropolis()
