"""Step-size rules: how each chain's step size ε responds to its accept decisions in round 1.

A rule (BlackJAX's adaptation shape, in place) has ``init(eps, n_chains)`` -> its state (a dict
of tensors and numbers, saved in checkpoints) and ``update(state, eps, info, t)``, which reads the transition's
``info`` (``rdfast.sampling.hmc.TransitionInfo``: per-row accept indicators and probabilities,
acceptance counts) and the transition count ``t`` (an int or a 0-d int64 tensor: the device
clock), and changes ``eps`` [B] float64 in place with torch ops only, so it runs on every
backend and inside a captured CUDA graph. Kernels never adapt.

Adapting while sampling breaks AIS's guarantee E[Ẑ] = Z, hence the two-round protocol: round 1
tunes with a rule, round 2 replays the tuned step sizes frozen (``rule=None``). ``RULES`` maps the
names ``rdfast.ais`` takes as ``adapt=`` to rule classes; a new rule is one class here.
"""
from __future__ import annotations

import math

import torch

EPS_GROW = 1.02
EPS_SHRINK = 0.98
EPS_MIN = 1e-4
EPS_MAX = 0.5
EPS_SEARCH_MAX = 100.0  # the largest initial step size initial_step_size returns


def multiplicative_step(eps: torch.Tensor, grow: torch.Tensor) -> None:
    """ε ← clamp(ε · (1.02 where ``grow`` else 0.98), 1e-4, 0.5), the factors in float64."""
    factor = torch.where(grow, torch.full_like(eps, EPS_GROW), torch.full_like(eps, EPS_SHRINK))
    eps.copy_(torch.clamp(eps * factor, EPS_MIN, EPS_MAX))


class EMA:
    """Exponential moving average of accept indicators (Wu et al.), a ← 0.9 a + 0.1 · accepted
    (a starts at the target); then ε grows 2 % if a > target, else shrinks 2 %."""

    name = "ema"
    DECAY = 0.9

    def __init__(self, target: float):
        self.target = target

    def init(self, eps: torch.Tensor, n_chains: int) -> dict:
        return {"accept_stat": torch.full_like(eps, self.target)}

    def update(self, state: dict, eps: torch.Tensor, info, t) -> None:
        stat = state["accept_stat"]
        stat.mul_(self.DECAY).add_(info.accepted, alpha=1.0 - self.DECAY)
        multiplicative_step(eps, stat > self.target)


class Cumulative:
    """The published code's rule: a = acceptance rate since the start of the run (n_accept / t);
    then ε grows 2 % if a > target, else shrinks 2 % (drifts late in long runs)."""

    name = "cumulative"

    def __init__(self, target: float):
        self.target = target

    def init(self, eps: torch.Tensor, n_chains: int) -> dict:
        return {}

    def update(self, state: dict, eps: torch.Tensor, info, t) -> None:
        multiplicative_step(eps, info.n_accept.double() / t > self.target)


class AcceptProbability:
    """Stochastic approximation on each item's mean accept probability ᾱ_n (over its chains):
    log ε_n ← log ε_n + γ (ᾱ_n − target), one step size per item (its chains share it, as round 2
    replays it). It moves by γ·0.35 in log ε per transition when every proposal is accepted and by
    γ·0.65 when none is, so it settles within tens of transitions and follows a moving target;
    ε stays in [1e-6, 100]."""

    name = "prob"
    GAIN = 0.5
    EPS_MIN, EPS_MAX = 1e-6, 100.0

    def __init__(self, target: float):
        self.target = target

    def init(self, eps: torch.Tensor, n_chains: int) -> dict:
        return {"n_chains": n_chains}

    def update(self, state: dict, eps: torch.Tensor, info, t) -> None:
        M = state["n_chains"]
        mean_prob = info.accept_prob.view(-1, M).mean(1)  # [N]
        step = torch.exp(self.GAIN * (mean_prob - self.target)).repeat_interleave(M)  # [B]
        eps.copy_(torch.clamp(eps * step, self.EPS_MIN, self.EPS_MAX))


RULES = {rule.name: rule for rule in (EMA, Cumulative, AcceptProbability)}


def make(name, target: float):
    """The rule called ``name`` (None: step sizes are frozen, no rule)."""
    if name is None:
        return None
    if name not in RULES:
        raise ValueError(f"adapt: expected one of {[*RULES, None]}, got {name!r}")
    return RULES[name](target)


def initial_step_size(prior, dim: int, leapfrog_steps: int, target: float, inv_mass=None, n: int = 256) -> float:
    """The step size at β = 0, where the target is the prior p: ε such that L-step leapfrog on p
    with metric ``inv_mass`` [K] (None: identity) has mean accept probability ``target`` over n
    chains started at prior samples. Bisection on log ε in [1e-4, 100] with a fixed generator, so
    the same prior always gives the same ε (it is chosen before any run, from the prior alone)."""
    from . import priors

    gen = torch.Generator().manual_seed(0)
    normal = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    if getattr(prior, "is_standard_normal", False):
        z0 = normal

        def energy_and_grad(z):
            return 0.5 * (z * z).sum(1), z
    else:
        z0 = prior.from_noise(normal, torch.rand(n, generator=gen, dtype=torch.float64)).double() \
            if hasattr(prior, "from_noise") else prior.sample(n).double()

        def energy_and_grad(z):
            return priors.energy_and_grad(prior, z)
    m = torch.ones(dim, dtype=torch.float64) if inv_mass is None else inv_mass.double().cpu()
    p0 = torch.randn(n, dim, generator=gen, dtype=torch.float64) / torch.sqrt(m)
    e0, g0 = energy_and_grad(z0)
    h0 = e0 + 0.5 * (m * p0 * p0).sum(1)

    def accept(eps: float) -> float:
        z, p, g = z0.clone(), p0 - 0.5 * eps * g0, g0
        for step in range(leapfrog_steps):
            z = z + eps * m * p
            e, g = energy_and_grad(z)
            p = p - (eps if step < leapfrog_steps - 1 else 0.5 * eps) * g
        h1 = e + 0.5 * (m * p * p).sum(1)
        return float(torch.where(torch.isfinite(h1), torch.exp(h0 - h1).clamp(max=1.0), torch.zeros_like(h1)).mean())

    low, high = math.log(1e-4), math.log(EPS_SEARCH_MAX)
    if accept(EPS_SEARCH_MAX) >= target:
        return EPS_SEARCH_MAX
    for _ in range(30):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if accept(math.exp(mid)) >= target else (low, mid)
    return math.exp(low)
