"""Step-size rules: how each chain's step size ε responds to its accept decisions in round 1.

A rule (BlackJAX's adaptation shape, in place) has ``init(eps, rows)`` -> its state (a dict of
tensors, saved in checkpoints) and ``update(state, eps, info, t)``, which reads the transition's
``info`` (``rdfast.sampling.hmc.TransitionInfo``: per-row accept indicators and probabilities,
acceptance counts) and the transition count ``t`` (an int or a 0-d int64 tensor: the device
clock), and changes ``eps`` [B] float64 in place with torch ops only, so it runs on every
backend and inside a captured CUDA graph. Kernels never adapt.

Adapting while sampling breaks AIS's guarantee E[Ẑ] = Z, hence the two-round protocol: round 1
tunes with a rule, round 2 replays the tuned step sizes frozen (``rule=None``). ``RULES`` maps the
names ``rdfast.ais`` takes as ``adapt=`` to rule classes; a new rule is one class here.
"""
from __future__ import annotations

import torch

EPS_GROW = 1.02
EPS_SHRINK = 0.98
EPS_MIN = 1e-4
EPS_MAX = 0.5


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

    def init(self, eps: torch.Tensor, rows: int) -> dict:
        return {"accept_stat": torch.full((rows,), self.target, dtype=torch.float64, device=eps.device)}

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

    def init(self, eps: torch.Tensor, rows: int) -> dict:
        return {}

    def update(self, state: dict, eps: torch.Tensor, info, t) -> None:
        multiplicative_step(eps, info.n_accept.double() / t > self.target)


RULES = {rule.name: rule for rule in (EMA, Cumulative)}


def make(name, target: float):
    """The rule called ``name`` (None: step sizes are frozen, no rule)."""
    if name is None:
        return None
    if name not in RULES:
        raise ValueError(f"adapt: expected one of {[*RULES, None]}, got {name!r}")
    return RULES[name](target)
