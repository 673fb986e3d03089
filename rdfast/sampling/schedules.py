"""Annealing schedules: float64 tensors ``0 = β_0 ≤ β_1 ≤ … ≤ β_T`` of ``T + 1`` values.

A schedule of ``n_steps`` transitions has ``n_steps + 1`` inverse temperatures; transition
``k`` moves from ``β_{k−1}`` to ``β_k``. Any user 1-D nondecreasing sequence starting at 0
is accepted by ``validate``.
"""
from __future__ import annotations

import math

import torch

from ..runtime.validation import check_int, check_positive_float, is_real


SIGMOID_RADIUS = 10.0  # the published code's default radius (sigmoid_rad = 10)


def _check_steps_and_max(n_steps, beta_max) -> tuple[int, float]:
    return check_int("n_steps", n_steps), check_positive_float("beta_max", beta_max)


def linear(n_steps: int, beta_max: float = 1.0) -> torch.Tensor:
    """β_k = β_max · k / T."""
    n_steps, beta_max = _check_steps_and_max(n_steps, beta_max)
    return torch.linspace(0.0, float(beta_max), n_steps + 1, dtype=torch.float64)


def geometric(n_steps: int, beta_min: float, beta_max: float = 1.0) -> torch.Tensor:
    """0 followed by ``n_steps`` geometrically spaced values from β_min to β_max."""
    n_steps, beta_max = _check_steps_and_max(n_steps, beta_max)
    if not (is_real(beta_min) and 0 < beta_min <= beta_max):
        raise ValueError(f"beta_min: expected 0 < beta_min <= beta_max={beta_max}, got {beta_min!r}")
    if n_steps == 1:
        tail = torch.tensor([float(beta_max)], dtype=torch.float64)
    else:
        tail = torch.logspace(math.log10(beta_min), math.log10(beta_max), n_steps, dtype=torch.float64)
        tail[-1] = float(beta_max)
    return torch.cat([torch.zeros(1, dtype=torch.float64), tail])


def sigmoid(n_steps: int, beta_max: float = 1.0, radius: float = SIGMOID_RADIUS) -> torch.Tensor:
    """Wu et al.'s sigmoid schedule: s_k = σ(−r + 2r·k/T), β_k = β_max (s_k − s_0)/(s_T − s_0).

    The radius r sets how finely the low-β end is resolved; r = 10 is the published code's
    default (r = 4 jumps to β ≈ 0.44 in the first of 1,000 transitions at β_max = 3,000)."""
    n_steps, beta_max = _check_steps_and_max(n_steps, beta_max)
    radius = check_positive_float("radius", radius)
    s = torch.sigmoid(torch.linspace(-radius, radius, n_steps + 1, dtype=torch.float64))
    betas = float(beta_max) * (s - s[0]) / (s[-1] - s[0])
    betas[0], betas[-1] = 0.0, float(beta_max)
    return betas


def validate(schedule) -> torch.Tensor:
    """Return ``schedule`` as a float64 CPU tensor after checking it is a valid schedule."""
    try:
        betas = torch.as_tensor(schedule, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"schedule: expected a 1-D sequence of numbers, got {type(schedule).__name__}") from exc
    if betas.dim() != 1 or betas.numel() < 2:
        raise ValueError(f"schedule: expected a 1-D sequence of at least 2 values, got shape {tuple(betas.shape)}")
    if not torch.isfinite(betas).all():
        raise ValueError("schedule: contains NaN or inf")
    if betas[0] != 0:
        raise ValueError(f"schedule: must start at 0 (the prior), starts at {betas[0].item()}")
    if (betas[1:] < betas[:-1]).any():
        k = int(torch.nonzero(betas[1:] < betas[:-1])[0]) + 1
        raise ValueError(f"schedule: must be nondecreasing, but beta[{k}]={betas[k].item()} < beta[{k - 1}]={betas[k - 1].item()}")
    return betas.contiguous()


def thermodynamic(tuning, n_steps: int) -> torch.Tensor:
    """The path over ``tuning``'s β range (from ``beta_bounds[0]`` to ``beta_bounds[-1]``, forward
    or reverse) of ``n_steps`` equal increments of thermodynamic length Λ(β) = ∫ s dβ', with s the
    speed √Var_β[d] tuned in round 1 (piecewise constant over its knots). For perfect transitions
    the log-weight variance Σ_k Δβ_k² Var[d] is then Λ²/T, the least any T-step path reaches.
    Speeds are floored at 1e-3 of the largest, so that no β range is skipped."""
    n_steps, _ = _check_steps_and_max(n_steps, 1.0)
    bounds = tuning.beta_bounds.to(torch.float64)  # [S + 1]
    speed = torch.nan_to_num(tuning.speed.to(torch.float64), nan=0.0)  # [S]
    top = float(speed.max()) if speed.numel() and float(speed.max()) > 0 else 1.0
    speed = speed.clamp(min=1e-3 * top)
    widths = bounds[1:] - bounds[:-1]  # [S], signed
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(speed * widths.abs(), 0)])  # [S + 1]
    targets = torch.linspace(0.0, float(cumulative[-1]), n_steps + 1, dtype=torch.float64)
    knot = (torch.searchsorted(cumulative, targets, side="right") - 1).clamp_(0, speed.numel() - 1)
    fraction = ((targets - cumulative[knot]) / (speed[knot] * widths[knot].abs())).nan_to_num(0.0).clamp_(0.0, 1.0)
    betas = bounds[knot] + fraction * widths[knot]
    betas[0], betas[-1] = bounds[0], bounds[-1]
    return betas.contiguous()


def through(path: torch.Tensor, betas) -> tuple:
    """``path`` with each β of ``betas`` on it exactly: the nearest β_k is moved onto it (the path
    stays monotone: β lies between that point's neighbours). Returns (path [T + 1], the indices k
    [J] of the β's). A β outside the path's range is an error."""
    out = path.clone()
    low, high = float(path.min()), float(path.max())
    indices = []
    for beta in float_list("through", betas):
        if not low <= beta <= high:
            raise ValueError(f"through: {beta} lies outside the schedule's range [{low}, {high}]")
        k = int(torch.argmin((out - beta).abs()))
        out[k] = beta
        indices.append(k)
    return out, indices


def float_list(name: str, values) -> list[float]:
    """``values`` (a number, a sequence, an array or a tensor of numbers) as a list of floats;
    TypeError naming ``name`` otherwise."""
    try:
        return [float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1)]
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name}: expected a number or a sequence of numbers, got {values!r}") from None
