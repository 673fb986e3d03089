"""The paper's two-round protocol in one call: tune step sizes, then replay them frozen.

Round 1 adapts each chain's step size while annealing (``rdfast.sampling.adapt``); its step
sizes, stored per item and knot, are fixed before round 2 starts, which replays them with a
fresh seed. Round 2's randomness is then independent of its parameters, so its Ẑ keeps
E[Ẑ] = Z; round 2 gives the reported curve.
"""
from __future__ import annotations

import dataclasses

from ..runtime.distributed import checked_on_every_rank, resolve
from . import schedules
from .annealing import anneal_items, device_of
from .config import HMCConfig, Problem, RunConfig, split_arguments
from .result import AISResult

_MIX = 6364136223846793005  # odd multiplier: round 2's key differs from every round-1 key


def second_round_seed(seed: int) -> int:
    """A seed for round 2 derived from round 1's, distinct from it and from seed ± small ints."""
    return (seed * _MIX + 1442695040888963407) % (1 << 62)


def two_rounds(problem: Problem, path, hmc: HMCConfig, run: RunConfig, distributed=False) -> tuple[AISResult, AISResult]:
    """Round 1 adapts step sizes (``run.seed``); round 2 replays them frozen with a fresh seed.
    Each round keeps its own checkpoint file (``<path>.tune``, ``<path>.final``)."""
    tuning = anneal_items(distributed, problem, path, hmc, run.part("tune"))
    frozen = dataclasses.replace(hmc, adapt=None, step_sizes=tuning.step_sizes)
    final = anneal_items(distributed, problem, path, frozen, run.part("final", seed=second_round_seed(run.seed)))
    final.config["tuning"] = {"seed": run.seed, "adapt": hmc.adapt, "acceptance": tuning.acceptance.mean().item(),
                              "seconds": tuning.seconds}
    return tuning, final


def rd_curve(decoder, x, beta_max: float, steps: int, *, schedule=None, radius: float = 4.0, seed=None,
             generator=None, adapt="ema", distributed=None, **ais_kwargs) -> AISResult | None:
    """Rate-distortion curve by the two-round protocol on the sigmoid schedule to ``beta_max``.

    ``schedule`` overrides the default ``schedules.sigmoid(steps, beta_max, radius)``; the other
    keyword arguments go to ``rdfast.ais`` (``checkpoint``/``resume`` cover both rounds). Returns
    round 2's AISResult (its step sizes are those tuned in round 1; ``config["tuning"]``
    summarises round 1). ``distributed`` as in ``rdfast.ais``: both rounds are sharded over the
    ranks (files ``<path>.tune.rank{r}of{W}``, ...).
    """
    def check():
        problem_kw, hmc_kw, run_kw = split_arguments("rd_curve", ais_kwargs)
        return (Problem.of(decoder, x, **problem_kw),
                schedules.validate(schedules.sigmoid(steps, beta_max, radius) if schedule is None else schedule),
                HMCConfig.of(adapt=adapt, **hmc_kw), RunConfig.of(seed=seed, generator=generator, **run_kw))

    problem, path, hmc, run = checked_on_every_rank(distributed, device_of(x), check)
    ranks = resolve(distributed, problem.x.device)
    if ranks is None:
        return two_rounds(problem, path, hmc, run)[1]
    # each round sharded and gathered on every rank (round 2 replays round 1's step sizes item by item)
    _, final = two_rounds(problem, path, hmc, run.replace(seed=ranks.agree(run.seed, problem.x.shape[0])),
                          distributed=True)
    return ranks.deliver(final)
