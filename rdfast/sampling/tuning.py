"""Parameters tuned in round 1 and replayed frozen in round 2, as functions of β.

Round 1 anneals with adaptation; ``Tuner`` watches it and returns a ``Tuning``: per knot j of
β (knot j covers β between ``beta_bounds[j]`` and ``beta_bounds[j + 1]``) and per item n

* the step size ε_j(n), the geometric mean over the item's chains and the knot's transitions;
* for a diagonal metric, the curvature h_j(n) [K] of the precision model λ(β) = λ0 + β h
  (``rdfast.sampling.metrics.PrecisionModel``; λ0 [K] the prior's precision);
* for a dense metric, one basis Q(n) [K, K] for the whole path (round 1's last; the
  curvatures are then in its coordinates: ``rdfast.sampling.rotation``);
* Var_β[d] across the item's chains, the knot's mean: the thermodynamic speed of the targets
  along β is s_j = √(mean_n Var) (one per knot, all items), and round 2's schedule spaces ∫ s dβ
  evenly (``rdfast.sampling.schedules.thermodynamic``). Kept per item, so that shards and
  batches of items join into exactly the tuning of one pass over all of them.

Round 2 may walk other β's than round 1 (a tuned schedule, or BDMC's reverse direction): it looks
each of its β's up in the knots (``Replay``). Everything round 2 uses is fixed before it starts
and independent of its randomness, so its Ẑ keeps E[Ẑ] = Z (DESIGN §2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .rotation import rotated_diagonal

MAX_KNOTS = 1024


BASIS_REFRESHES = 16  # times round 1 re-estimates a dense metric's basis


BASIS_SPACING = 32  # knots at least between two refreshes (each restarts the diagonal's averages)


def basis_refresh_knots(n_knots: int, refreshes: int = BASIS_REFRESHES, spacing: int = BASIS_SPACING) -> set:
    """The knots of round 1 after whose close a dense metric's basis is re-estimated: every
    max(⌈S / refreshes⌉, spacing)-th, not the last (round 2 replays the basis of the last refresh)."""
    every = max(-(-n_knots // refreshes), spacing)
    return {j for j in range(every - 1, n_knots - 1, every)}


def knot_boundaries(n_transitions: int, max_knots: int = MAX_KNOTS) -> torch.Tensor:
    """[S + 1] int64 boundaries of S = min(T, max_knots) near-equal knots over transitions 1..T:
    knot j covers transitions boundaries[j] .. boundaries[j + 1] − 1."""
    S = min(n_transitions, max_knots)
    return 1 + torch.div(torch.arange(S + 1, dtype=torch.int64) * n_transitions, S, rounding_mode="floor")


@dataclass
class Tuning:
    """Tuned parameters of N items over S knots of β (see the module docstring).

    beta_bounds [S + 1] float64 (monotone: increasing for a forward path, decreasing for a
    reverse one); log_eps [S, N] float64; var_d [S, N] float64; curvature [S, N, K] float32 or
    None (identity metric); prior_precision [K] float64 or None; rotation [N, K, K] float64 (the
    dense metric's bases, orthonormal columns) or None.
    """

    beta_bounds: torch.Tensor
    log_eps: torch.Tensor
    var_d: torch.Tensor
    curvature: Optional[torch.Tensor] = None
    prior_precision: Optional[torch.Tensor] = None
    rotation: Optional[torch.Tensor] = None

    ARRAYS = ("beta_bounds", "log_eps", "var_d", "curvature", "prior_precision", "rotation")

    @property
    def n_items(self) -> int:
        return self.log_eps.shape[1]

    @property
    def step_sizes(self) -> torch.Tensor:
        """Step sizes [S, N]."""
        return torch.exp(self.log_eps)

    @property
    def speed(self) -> torch.Tensor:
        """The thermodynamic speed √(mean_n Var_β[d]) per knot [S]."""
        return torch.sqrt(self.var_d.mean(1))

    @property
    def beta_range(self) -> tuple[float, float]:
        return float(self.beta_bounds.min()), float(self.beta_bounds.max())

    def select(self, items: slice) -> "Tuning":
        return Tuning(self.beta_bounds, self.log_eps[:, items], self.var_d[:, items],
                      None if self.curvature is None else self.curvature[:, items], self.prior_precision,
                      None if self.rotation is None else self.rotation[items])

    def check_against(self, path: torch.Tensor, n_items: int, latent_dim: int, metric: str) -> None:
        """A clear error unless this tuning is well formed, covers ``path``'s β range for ``n_items``
        items of ``latent_dim`` latents and has what ``metric`` needs."""
        self._check_values(latent_dim)
        if self.n_items != n_items:
            raise ValueError(f"tuning: tuned for {self.n_items} data items, but x has {n_items}")
        low, high = self.beta_range
        span = max(high - low, 1e-300)
        if path.min() < low - 1e-9 * span or path.max() > high + 1e-9 * span:
            raise ValueError(f"tuning: tuned for beta in [{low:.6g}, {high:.6g}], but the schedule runs over "
                             f"[{float(path.min()):.6g}, {float(path.max()):.6g}]; tune with a schedule that covers it")
        if metric != "identity" and self.curvature is None:
            raise ValueError(f"metric: {metric!r} replays a tuned metric, but this tuning has none "
                             "(it was tuned with metric='identity')")
        if metric == "dense" and self.rotation is None:
            raise ValueError("metric: 'dense' replays a tuned basis, but this tuning has none "
                             "(it was tuned with metric='diagonal'); tune with metric='dense'")

    def _check_values(self, latent_dim: int) -> None:
        S = self.beta_bounds.numel() - 1
        steps = self.beta_bounds[1:] - self.beta_bounds[:-1]
        if S < 1 or not torch.isfinite(self.beta_bounds).all() or not ((steps >= 0).all() or (steps <= 0).all()):
            raise ValueError("tuning: beta_bounds must be a monotone sequence of finite numbers with at least 2 values")
        if self.log_eps.dim() != 2 or self.log_eps.shape[0] != S or not torch.isfinite(self.log_eps).all():
            raise ValueError(f"tuning: log_eps must be finite with shape [{S}, N], got {list(self.log_eps.shape)}")
        if self.var_d.shape != self.log_eps.shape or not (self.var_d >= 0).all():
            raise ValueError(f"tuning: var_d must be nonnegative with shape {list(self.log_eps.shape)}")
        if self.curvature is None:
            return
        shape = [S, self.n_items, latent_dim]
        if list(self.curvature.shape) != shape or not (torch.isfinite(self.curvature) & (self.curvature >= 0)).all():
            raise ValueError(f"tuning: curvature (the metric's) must be finite and nonnegative with shape {shape}, got "
                             f"{list(self.curvature.shape)}")
        lam = self.prior_precision
        if lam is None or list(lam.shape) != [latent_dim] or not (torch.isfinite(lam) & (lam > 0)).all():
            raise ValueError(f"tuning: prior_precision (the metric's) must be positive and finite with shape "
                             f"[{latent_dim}]")
        if self.rotation is not None:
            Q = self.rotation.double()
            eye = torch.eye(latent_dim, dtype=torch.float64)
            if list(Q.shape) != [self.n_items, latent_dim, latent_dim] or not torch.isfinite(Q).all() or \
                    (Q.transpose(1, 2) @ Q - eye).abs().max() > 1e-6:
                raise ValueError(f"tuning: rotation (the dense metric's bases) must hold orthonormal matrices with "
                                 f"shape {[self.n_items, latent_dim, latent_dim]}, got {list(Q.shape)}")

    def knots_of(self, betas: torch.Tensor) -> torch.Tensor:
        """The knot [T] (int64) of each β of ``betas`` [T] (clamped to the tuned range)."""
        bounds = self.beta_bounds
        if bounds[-1] < bounds[0]:  # a reverse path: search on −β
            bounds, betas = -bounds, -betas
        knots = torch.searchsorted(bounds.contiguous(), betas.contiguous(), side="left") - 1
        return knots.clamp_(0, bounds.numel() - 2)

    def to_dict(self) -> dict:
        """Its tensors by name (None for an absent metric): a checkpoint holds them."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_dict(cls, arrays: dict) -> "Tuning":
        return cls(**{name: arrays[name] for name in cls.ARRAYS})

    def to_arrays(self, prefix: str) -> dict:
        return {f"{prefix}{name}": getattr(self, name).cpu().numpy() for name in self.ARRAYS
                if getattr(self, name) is not None}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> "Tuning | None":
        if f"{prefix}beta_bounds" not in arrays:
            return None
        return cls(**{name: torch.from_numpy(arrays[f"{prefix}{name}"]) for name in cls.ARRAYS
                      if f"{prefix}{name}" in arrays})

    @classmethod
    def concat(cls, parts: list) -> "Tuning":
        """One tuning from the tunings of consecutive item shards."""
        first = parts[0]
        return cls(first.beta_bounds, torch.cat([p.log_eps for p in parts], 1), torch.cat([p.var_d for p in parts], 1),
                   None if first.curvature is None else torch.cat([p.curvature for p in parts], 1),
                   first.prior_precision, None if first.rotation is None else torch.cat([p.rotation for p in parts]))


def as_tuning(value) -> Tuning:
    """Accept a Tuning or an AISResult (its ``tuning``)."""
    value = getattr(value, "tuning", value)
    if not isinstance(value, Tuning):
        raise TypeError(f"tuning: expected a Tuning or an AISResult from a tuning run, got {type(value).__name__}")
    return value


class Tuner:
    """Round 1's watcher of one batch of N items × M chains along ``path``: per transition it
    adds the step sizes, the variance of d across each item's chains and (with a metric model)
    the metric's moments; at the last transition of each knot it closes the knot's values."""

    def __init__(self, path: torch.Tensor, boundaries: torch.Tensor, n_items: int, n_chains: int, device,
                 metric_model=None, rotation=None):
        """``metric_model``: a PrecisionModel to estimate (None: identity metric); ``rotation``: the
        dense metric's ``Rotation`` (its basis at the end is the tuned one)."""
        self.boundaries, self.n_chains, self.metric_model, self.rotation = boundaries, n_chains, metric_model, rotation
        S = boundaries.numel() - 1
        f64 = dict(dtype=torch.float64, device=device)
        self.beta_bounds = path[boundaries - 1].to(torch.float64)  # [S + 1]
        self.sum_log_eps = torch.zeros(n_items * n_chains, **f64)  # [B] this knot's Σ log ε
        self.sum_var_d = torch.zeros(n_items, **f64)  # [N] this knot's Σ over transitions of Var_m d
        self.log_eps = torch.empty(S, n_items, **f64)  # [S, N]
        self.var_d = torch.empty(S, n_items, **f64)  # [S, N]
        K = metric_model.curvature.shape[1] if metric_model is not None else 0
        self.curvature = torch.empty(S, n_items, K, dtype=torch.float32, device=device) if K else None  # [S, N, K]

    def observe(self, state, beta) -> None:
        """Before a transition: its step sizes, and the chains' states, targeting β (the previous
        transition's; the variance of the weight increment Δβ·d is Δβ² Var_β[d]). Torch ops on
        device tensors only: capturable."""
        self.sum_log_eps.add_(torch.log(state.eps))
        d = state.d.view(-1, self.n_chains)  # [N, M]
        self.sum_var_d.add_(((d - d.mean(1, keepdim=True)) ** 2).mean(1))  # row by row: batching leaves it alone
        if self.metric_model is not None:
            self.metric_model.observe(state.z, self.metric_model.path.grad(state.z, beta), state.g, beta)

    def close(self, knot: int) -> None:
        """The knot's tuned values, from what was observed since the last close."""
        count = int(self.boundaries[knot + 1] - self.boundaries[knot])
        M = self.n_chains
        self.log_eps[knot] = self.sum_log_eps.view(-1, M).sum(1) / (M * count)
        self.var_d[knot] = self.sum_var_d / count
        self.sum_log_eps.zero_()
        self.sum_var_d.zero_()
        if self.curvature is not None:
            self.curvature[knot] = self.metric_model.curvature

    def rotate(self, change: torch.Tensor, knot: int) -> None:
        """The chains moved to new coordinates (R [N, K, K]) after knot ``knot`` closed: the metric
        model and the curvatures of knots 0..knot, as diagonals of R diag(h) Rᵀ in them."""
        self.metric_model.rotate(change)
        self.curvature[: knot + 1] = rotated_diagonal(change, self.curvature[: knot + 1])

    def tuning(self) -> Tuning:
        model = self.metric_model
        return Tuning(self.beta_bounds.cpu(), self.log_eps.cpu(), self.var_d.cpu(),
                      None if self.curvature is None else self.curvature.cpu(),
                      None if model is None else model.path.prior_precision.cpu(),
                      None if self.rotation is None else self.rotation.basis.cpu().clone())

    def to_dict(self) -> dict:
        out = {"sum_log_eps": self.sum_log_eps, "sum_var_d": self.sum_var_d, "log_eps": self.log_eps,
               "var_d": self.var_d, "curvature": self.curvature}
        if self.metric_model is not None:
            out["metric"] = self.metric_model.to_dict()
        return out

    def load(self, saved: dict) -> None:
        for name in ("sum_log_eps", "sum_var_d", "log_eps", "var_d", "curvature"):
            setattr(self, name, saved[name])
        if self.metric_model is not None:
            self.metric_model.load(saved["metric"])


class Replay:
    """Round 2's frozen parameters along its own ``path``: the knots of its transitions as runs
    (``bounds``: the plan's knot boundaries over transitions 1..T, ``knots``: the tuned knot of each
    run) and the values to set at the start of each run."""

    def __init__(self, tuning: Tuning, path: torch.Tensor, n_chains: int, device):
        self.tuning, self.n_chains = tuning, n_chains
        knot = tuning.knots_of(path[1:]).tolist()  # [T]: transition k + 1's knot
        starts = [0] + [k for k in range(1, len(knot)) if knot[k] != knot[k - 1]]
        self.bounds = torch.tensor([s + 1 for s in starts] + [len(knot) + 1], dtype=torch.int64)  # [R + 1]
        self.knots = [knot[s] for s in starts]  # [R]
        self.eps = torch.exp(tuning.log_eps.to(device))  # [S, N]
        self.curvature = None if tuning.curvature is None else tuning.curvature.to(device)  # [S, N, K]

    def start(self, run: int, state, metric_model) -> None:
        """Set the step sizes (and the metric model's curvature) of run ``run``."""
        knot = self.knots[run]
        state.eps.copy_(self.eps[knot].repeat_interleave(self.n_chains))
        if metric_model is not None:
            metric_model.curvature.copy_(self.curvature[knot])
