"""The paper's two-round protocol in one call: tune step sizes, then replay them frozen."""
from __future__ import annotations

from . import schedules
from ..runtime.checkpoint import part_paths
from .annealing import ais
from ..runtime.distributed import run_curve
from .result import AISResult
from ..runtime.validation import resolve_seed

_MIX = 6364136223846793005  # odd multiplier: round 2's key differs from every round-1 key


def second_round_seed(seed: int) -> int:
    """A seed for round 2 derived from round 1's, distinct from it and from seed ± small ints."""
    return (seed * _MIX + 1442695040888963407) % (1 << 62)


def two_rounds(decoder, x, schedule, *, seed, adapt="ema", checkpoint=None, resume=None,
               **ais_kwargs) -> tuple[AISResult, AISResult]:
    """Round 1 adapts step sizes (seed); round 2 replays them frozen with a fresh seed.

    With ``checkpoint``/``resume`` each round keeps its own file (``<path>.tune``, ``<path>.final``).
    """
    tuning = ais(decoder, x, schedule, adapt=adapt, seed=seed, **part_paths(checkpoint, resume, "tune"),
                 **ais_kwargs)
    final = ais(decoder, x, schedule, step_sizes=tuning.step_sizes, adapt=None, seed=second_round_seed(seed),
                **part_paths(checkpoint, resume, "final"), **ais_kwargs)
    final.config["tuning"] = {"seed": seed, "adapt": adapt, "acceptance": tuning.acceptance.mean().item(),
                              "seconds": tuning.seconds}
    return tuning, final


def rd_curve(decoder, x, beta_max: float, steps: int, *, schedule=None, radius: float = 4.0, seed=None,
             generator=None, adapt="ema", distributed=None, **ais_kwargs) -> AISResult | None:
    """Rate-distortion curve by the two-round protocol on the sigmoid schedule to ``beta_max``.

    ``schedule`` overrides the default ``schedules.sigmoid(steps, beta_max, radius)``; the other
    keyword arguments go to ``rdfast.ais`` (``checkpoint``/``resume`` cover both rounds). Returns round 2's AISResult (its step sizes are
    those tuned in round 1; ``config["tuning"]`` summarises round 1). ``distributed`` as in
    ``rdfast.ais``: both rounds are sharded over the ranks (files ``<path>.tune.rank{r}of{W}``, ...).
    """
    if schedule is None:
        schedule = schedules.sigmoid(steps, beta_max, radius)
    return run_curve(distributed, two_rounds, decoder, x, schedule, seed=resolve_seed(seed, generator), adapt=adapt,
                     **ais_kwargs)
