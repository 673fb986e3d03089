"""Tuned step-size schedules: one step size per data item per knot, piecewise constant.

Round 1 of the two-round protocol adapts a step size per chain; for round 2 it is stored
compactly as ``log_eps[j, n]``: the mean over item n's chains and over the transitions of
knot j of log ε (a geometric mean). Knot j covers transitions ``boundaries[j] ..
boundaries[j+1] − 1`` (transitions are numbered 1..T). Round 2 replays exp(log_eps) frozen
for every chain of the item, so its step sizes do not depend on its own randomness.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_KNOTS = 1024


def knot_boundaries(n_transitions: int, max_knots: int = MAX_KNOTS) -> torch.Tensor:
    """[S + 1] int64 boundaries of S = min(T, max_knots) near-equal knots over transitions 1..T."""
    S = min(n_transitions, max_knots)
    return 1 + torch.div(torch.arange(S + 1, dtype=torch.int64) * n_transitions, S, rounding_mode="floor")


@dataclass
class StepSizes:
    """A frozen step-size schedule: ``boundaries`` [S + 1] int64, ``log_eps`` [S, N] float64."""

    boundaries: torch.Tensor
    log_eps: torch.Tensor

    @property
    def n_transitions(self) -> int:
        return int(self.boundaries[-1]) - 1

    @property
    def n_items(self) -> int:
        return self.log_eps.shape[1]

    @property
    def values(self) -> torch.Tensor:
        """Step sizes [S, N]."""
        return torch.exp(self.log_eps)

    def check_matches(self, n_transitions: int, n_items: int):
        if self.n_transitions != n_transitions:
            raise ValueError(f"step_sizes: tuned for {self.n_transitions} transitions, but the schedule has "
                             f"{n_transitions}; tune with the same schedule")
        if self.n_items != n_items:
            raise ValueError(f"step_sizes: tuned for {self.n_items} data items, but x has {n_items}")

    def select(self, items: slice) -> "StepSizes":
        return StepSizes(self.boundaries, self.log_eps[:, items])


def as_step_sizes(value) -> StepSizes:
    """Accept a StepSizes or an AISResult (its tuned ``step_sizes``)."""
    value = getattr(value, "step_sizes", value)
    if not isinstance(value, StepSizes):
        raise TypeError(f"step_sizes: expected a StepSizes or an AISResult from a tuning run, got {type(value).__name__}")
    return value


class StepSizeTrace:
    """Round 1's step sizes as they are used, compacted into a StepSizes: ``add`` each transition's
    ε [B] (float64), ``close(j)`` at the last transition of knot j, which sets log_eps[j, n] to the
    mean over item n's chains and the knot's transitions of log ε."""

    def __init__(self, boundaries: torch.Tensor, n_items: int, n_chains: int, device):
        self.boundaries, self.n_chains = boundaries, n_chains
        self.sum_log_eps = torch.zeros(n_items * n_chains, dtype=torch.float64, device=device)  # [B] this knot's Σ log ε
        self.log_eps = torch.empty(boundaries.numel() - 1, n_items, dtype=torch.float64, device=device)  # [S, N]

    def add(self, eps: torch.Tensor) -> None:
        self.sum_log_eps.add_(torch.log(eps))

    def close(self, knot: int) -> None:
        count = int(self.boundaries[knot + 1] - self.boundaries[knot])
        self.log_eps[knot] = self.sum_log_eps.view(-1, self.n_chains).sum(1) / (self.n_chains * count)
        self.sum_log_eps.zero_()

    def to_dict(self) -> dict:
        return {"sum_log_eps": self.sum_log_eps, "log_eps": self.log_eps}

    def load(self, saved: dict) -> None:
        self.sum_log_eps, self.log_eps = saved["sum_log_eps"], saved["log_eps"]
