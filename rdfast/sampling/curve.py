"""The two-round protocol in one call: tune in round 1, then replay frozen in round 2.

Round 1 anneals with adaptation (step sizes, ``rdfast.sampling.adapt``; a diagonal metric,
``metrics.PrecisionModel``, in a tuned basis where the prior allows, ``rdfast.sampling.rotation``) and measures how fast the targets change along β; the tuned
parameters, stored per item as functions of β (``rdfast.sampling.tuning``), are fixed before
round 2 starts, which replays them with a fresh seed along a schedule of equal thermodynamic
length (``schedules.thermodynamic``). Round 2's randomness is then independent of its
parameters, so its Ẑ keeps E[Ẑ] = Z; round 2 gives the reported curve.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..runtime.distributed import checked_on_every_rank, resolve
from ..runtime.progress import bar_label
from ..runtime.validation import check_int, check_positive_float
from . import schedules
from .annealing import anneal_items, device_of, record_steps
from .config import TUNED_HMC, HMCConfig, Problem, RunConfig, split_arguments
from .result import AISResult

_MIX = 6364136223846793005  # odd multiplier: round 2's key differs from every round-1 key
ROUNDS = ("tune", "final")  # the tags of the rounds' checkpoint files


def second_round_seed(seed: int) -> int:
    """A seed for round 2 derived from round 1's, distinct from it and from seed ± small ints."""
    return (seed * _MIX + 1442695040888963407) % (1 << 62)


def two_rounds(problem: Problem, path, hmc: HMCConfig, run: RunConfig, distributed=False,
               tuned_schedule: bool = True, through=()) -> tuple[AISResult, AISResult]:
    """Round 1 tunes along ``path`` (``run.seed``); round 2 replays the tuning frozen with a fresh
    seed, along the tuned schedule of as many transitions (``tuned_schedule=False``: ``path``),
    passing through each β of ``through`` exactly and recording it. Each round keeps its own
    checkpoint file (``<path>.tune``, ``<path>.final``) and its progress bar (``<label> · round 1/2``)."""
    tuning = anneal_items(distributed, problem, path, hmc, run.part("tune", label=bar_label(run.label, "round 1/2")))
    path2 = schedules.thermodynamic(tuning.tuning, path.numel() - 1) if tuned_schedule else path
    path2, forced = schedules.through(path2, through)
    spread = isinstance(run.record, int)  # a count (RunConfig.of checked it), not explicit indices
    steps = curve_points(tuning.beta, tuning.mean_distortion, tuning.mean_rate, path2, run.record) if spread \
        else record_steps(run.record, path2.numel() - 1)
    record = merge_forced(steps.tolist(), forced) if spread else sorted(set(steps.tolist()) | set(forced))
    final = anneal_items(distributed, problem, path2, hmc.frozen(tuning.tuning),
                         run.part("final", seed=second_round_seed(run.seed), record=record,
                                  label=bar_label(run.label, "round 2/2")))
    final.config["tuning"] = {"seed": run.seed, "adapt": hmc.adapt, "acceptance": tuning.acceptance.mean().item(),
                              "seconds": tuning.seconds, "tuned_schedule": bool(tuned_schedule)}
    return tuning, final


def merge_forced(steps: list, forced: list) -> list:
    """``steps`` and ``forced`` together, where a forced transition takes the place of the nearest
    of ``steps`` (not the last) if that lies within half their median spacing: a forced β does not
    sit beside a curve point closer than the points' noise."""
    steps = sorted(steps)
    half = 0.5 * float(np.median(np.diff([0] + steps)))
    for f in forced:
        free = [s for s in steps[:-1] if s not in forced]
        if f not in steps and free:
            nearest = min(free, key=lambda s: abs(s - f))
            if abs(nearest - f) < half:
                steps.remove(nearest)
    return sorted(set(steps) | set(forced))


def curve_points(beta: torch.Tensor, distortion: torch.Tensor, rate: torch.Tensor, path: torch.Tensor,
                 n: int) -> torch.Tensor:
    """min(n, T) transitions of ``path`` [T + 1] (int64, the last included) whose RD points lie
    evenly along the curve, as round 1 measured it: its mean ``distortion`` and ``rate`` [R1] at
    its recorded ``beta`` [R1] (made monotone: D falls and R rises with β), interpolated at the
    path's β's; the curve's arc length in rate and distortion, each scaled to its range, is
    Σ_k √(ΔD_k² + ΔR_k²), and the records are the transitions where it crosses j/n of the whole
    (j < n; moved apart where they coincide) and the last.
    Falls back to evenly spaced transitions where round 1 saw no change."""
    T = path.numel() - 1
    order = torch.argsort(beta)
    b = beta[order].double()
    d = torch.cummin(distortion[order].double(), 0).values  # [R1]
    r = torch.cummax(rate[order].double(), 0).values  # [R1]
    at = lambda values: torch.from_numpy(np.interp(path.numpy(), b.numpy(), values.numpy()))  # noqa: E731 [T + 1]
    steps = []
    for values in (at(d), at(r)):
        change = (values[1:] - values[:-1]).abs()  # [T]
        steps.append(change / change.sum() if change.sum() > 0 else torch.zeros_like(change))
    arc = torch.cumsum(torch.sqrt(steps[0] ** 2 + steps[1] ** 2), 0)  # [T]
    if not arc[-1] > 0:
        return record_steps(n, T)
    n = min(n, T)
    targets = arc[-1] * torch.arange(1, n, dtype=torch.float64) / n  # [n − 1]
    picked = (1 + torch.searchsorted(arc, targets, side="left")).tolist() + [T]
    for i in range(1, n - 1):  # n distinct transitions: each after the previous, and before the next
        picked[i] = max(picked[i], picked[i - 1] + 1)
    for i in range(n - 2, -1, -1):
        picked[i] = min(picked[i], picked[i + 1] - 1)
    return torch.tensor(picked, dtype=torch.int64)


def rd_curve(decoder, x, beta_max: float | None = None, steps: int | None = None, *, schedule=None,
             radius: float = schedules.SIGMOID_RADIUS, seed=None, generator=None, adapt="prob", tuned_schedule=True, through=(),
             distributed=None, **ais_kwargs) -> AISResult | None:
    """Rate-distortion curve by the two-round protocol, up to ``beta_max`` in ``steps`` transitions
    per round.

    Round 1 runs ``schedules.sigmoid(steps, beta_max, radius)`` (or ``schedule``, whose last β and
    length then give beta_max and steps), round 2 the tuned schedule (``tuned_schedule=False``:
    round 1's). HMC defaults to the tuned settings (``config.TUNED_HMC``: initial step size found
    on the prior, the "prob" step-size rule, a dense metric per item ("auto": a diagonal one in a
    tuned basis; diagonal alone for priors other than the standard normal), ±50 % jitter); the other
    keyword arguments go to ``rdfast.ais`` (``checkpoint``/``resume`` cover both rounds). The
    published protocol is ``schedule=schedules.sigmoid(steps, beta_max, 10), adapt="cumulative",
    metric="identity", jitter=0.0, step_size=0.01, tuned_schedule=False``. ``through``: β's that
    round 2 passes through exactly and records (1.0 on a likelihood's curve: log Ẑ there is the
    AIS log-likelihood). ``record``: an int n records n points spread evenly along the
    curve (``curve_points``: by the rate and distortion round 1 measured), or explicit
    transition indices of round 2. Returns round 2's AISResult (its tuning is round 1's; ``config["tuning"]``
    summarises round 1). ``distributed`` as in ``rdfast.ais``: both rounds are sharded over the
    ranks (files ``<path>.tune.rank{r}of{W}``, ...).
    """
    def check():
        problem_kw, hmc_kw, run_kw = split_arguments("rd_curve", ais_kwargs)
        if "encoder" in problem_kw:
            raise TypeError("rd_curve() takes no encoder: every β of an RD curve is a point of the path from the prior "
                            "(rdfast.log_likelihood anneals from an encoder to beta = 1)")
        path = curve_path(schedule, beta_max, steps, radius)
        schedules.through(path, through)  # each β in range, before any work
        run = RunConfig.of(seed=seed, generator=generator, **run_kw)
        run.check_parts(ROUNDS)
        return (Problem.of(decoder, x, **problem_kw), path, HMCConfig.of(**{**TUNED_HMC, **hmc_kw, "adapt": adapt}),
                run.named("RD curve"))

    problem, path, hmc, run = checked_on_every_rank(distributed, device_of(x), check)
    return final_round(distributed, problem, path, hmc, run, tuned_schedule, through)


def final_round(distributed, problem: Problem, path, hmc: HMCConfig, run: RunConfig, tuned_schedule: bool,
                through=()) -> AISResult | None:
    """Round 2 of ``two_rounds``, here or sharded over the ranks: then each round is sharded and
    gathered on every rank (round 2 replays round 1's tuning item by item), and "rank0" keeps
    the result on rank 0 only."""
    ranks = resolve(distributed, problem.x.device)
    if ranks is None:
        return two_rounds(problem, path, hmc, run, tuned_schedule=tuned_schedule, through=through)[1]
    _, final = two_rounds(problem, path, hmc, run.replace(seed=ranks.agree(run.seed, problem.x.shape[0])),
                          distributed=True, tuned_schedule=tuned_schedule, through=through)
    return ranks.deliver(final)


def curve_path(schedule, beta_max, steps, radius) -> torch.Tensor:
    """Round 1's path: the sigmoid of ``steps`` transitions to ``beta_max``, or ``schedule``, which
    beta_max and steps (when given) must then describe."""
    if schedule is None:
        if beta_max is None or steps is None:
            raise ValueError("beta_max: rd_curve needs beta_max and steps (or a schedule=)")
        return schedules.sigmoid(check_int("steps", steps), check_positive_float("beta_max", beta_max), radius)
    path = schedules.validate(schedule)
    if steps is not None and steps != path.numel() - 1:
        raise ValueError(f"steps: {steps} given, but schedule= has {path.numel() - 1} transitions; pass one of them")
    if beta_max is not None and not math.isclose(float(beta_max), float(path[-1]), rel_tol=1e-12):
        raise ValueError(f"beta_max: {beta_max} given, but schedule= ends at {float(path[-1])}; pass one of them")
    return path
