"""The settings of an annealing run as three checked objects, built by the public functions
(``rdfast.ais``, ``rd_curve``, ``bdmc``) from their keyword arguments before any work starts:

* ``Problem``: what is estimated: decoder, data, distortion, prior, latent size;
* ``HMCConfig``: the transition and its tuning: chains, leapfrog steps, step sizes and the rule
  that adapts them, or the frozen step sizes of a tuning round;
* ``RunConfig``: how it runs: records, seed, backend, batches, progress, checkpoints, graphs.

Each is frozen; ``replace`` (dataclasses) derives variants, ``items`` selects a shard of items.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..runtime.checkpoint import check_parts, check_path, parse_every, part_paths
from ..runtime.validation import (check_data, check_int, check_positive_float, check_record, infer_latent_dim, is_real,
                                  resolve_seed)
from . import adapt as adaptation
from . import paths, priors
from .distortions import Distortion, resolve
from .tuning import Tuning, as_tuning

DEFAULT_ADAPT = "default"  # "ema" when tuning, None when frozen step sizes are replayed


@dataclass(frozen=True)
class Problem:
    """x [N, *event] (float32/float64, checked), ``decoder`` z [rows, K] -> x̂, a resolved
    ``distortion``, a ``prior`` over z (standard normal or an object with log_prob and
    from_noise/sample), the latent size K, and optionally an ``encoder`` x -> (mean, logvar) of a
    diagonal Gaussian q(z|x), evaluated once (``q_mean``, ``q_logvar`` [N, K]): the annealing path
    then runs from q (``rdfast.sampling.paths.EncoderPath``) instead of from the prior."""

    decoder: Any
    x: torch.Tensor
    distortion: Distortion
    prior: Any
    latent_dim: int
    encoder: Any = None
    q_mean: Optional[torch.Tensor] = None
    q_logvar: Optional[torch.Tensor] = None

    @classmethod
    def of(cls, decoder, x, distortion="gaussian_nll", logvar=None, prior=None, latent_dim=None,
           encoder=None) -> "Problem":
        if not callable(decoder):
            raise TypeError(f"decoder: expected a callable z [rows, K] -> x_hat (an nn.Module, a function), "
                            f"got {type(decoder).__name__}")
        x = check_data(x)
        K = infer_latent_dim(decoder, prior, latent_dim)
        warn_if_training("decoder", decoder)
        warn_if_training("encoder", encoder)
        q = () if encoder is None else encode(encoder, x, K)
        return cls(decoder, x, resolve(distortion, logvar, x), priors.check(prior, K), K, encoder, *q)

    def items(self, start: int, stop: int) -> "Problem":
        if self.encoder is None:
            return dataclasses.replace(self, x=self.x[start:stop])
        return dataclasses.replace(self, x=self.x[start:stop], q_mean=self.q_mean[start:stop],
                                   q_logvar=self.q_logvar[start:stop])

    @property
    def rotation_invariant(self) -> bool:
        """Whether the annealing path is invariant under rotations of z (the standard normal
        prior, no encoder): what the dense metric's change of coordinates needs."""
        return self.encoder is None and getattr(self.prior, "is_standard_normal", False)

    def path(self, start: int, stop: int, n_chains: int, prior_precision: torch.Tensor):
        """The annealing path of items start..stop−1 (``rdfast.sampling.paths``)."""
        if self.encoder is None:
            return paths.PriorPath(self.prior, prior_precision)
        return paths.EncoderPath(self.prior, prior_precision, self.q_mean[start:stop], self.q_logvar[start:stop],
                                 n_chains)


def warn_if_training(name: str, model) -> None:
    """Warn if a submodule of ``model`` is in training mode and its forward reads ``self.training``
    (dropout, batch norm, ...): its outputs are then random or depend on the batch."""
    if not isinstance(model, torch.nn.Module):
        return
    for path, module in model.named_modules():
        code = getattr(type(module).forward, "__code__", None)
        if module.training and code is not None and "training" in code.co_names:
            warnings.warn(f"{name}: {path or type(model).__name__} ({type(module).__name__}) is in training mode, where "
                          "its output is random or depends on the batch: the same seed gives different results; "
                          f"call {name}.eval() first", RuntimeWarning, stacklevel=4)
            return


def encode(encoder, x: torch.Tensor, latent_dim: int) -> tuple:
    """The encoder's (mean, logvar) [N, K] at x, checked: shapes, finite values, x's dtype and device."""
    if not callable(encoder):
        raise TypeError(f"encoder: expected a callable x -> (mean, logvar), got {type(encoder).__name__}")
    with torch.no_grad():
        out = encoder(x)
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"encoder: must return a (mean, logvar) pair of tensors, got {type(out).__name__}")
    expected = (x.shape[0], latent_dim)
    mean, logvar = (t.detach().reshape(t.shape[0], -1) if t.dim() else t for t in out)
    for name, t in (("mean", mean), ("logvar", logvar)):
        if tuple(t.shape) != expected:
            raise ValueError(f"encoder: {name} must have shape {list(expected)} (items × latents), got "
                             f"{list(out[0 if name == 'mean' else 1].shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"encoder: {name} has NaN or inf at {int((~torch.isfinite(t)).sum())} entries")
    return mean.to(x).contiguous(), logvar.to(x).contiguous()


METRICS = ("identity", "diagonal", "dense", "auto")
# The HMC settings of the tuned two-round protocol (rd_curve, bdmc, log_likelihood): chosen by
# measurement, docs/accuracy.md (bench/accuracy.py)
TUNED_HMC = dict(step_size="auto", adapt="prob", metric="auto", jitter=0.5)


@dataclass(frozen=True)
class HMCConfig:
    """The transition and its tuning: M chains per item, L leapfrog steps, the initial step size
    ε0 ("auto": found on the prior at β = 0, ``adapt.initial_step_size``), the acceptance target,
    the step-size rule of round 1 (``rdfast.sampling.adapt``), the metric ("identity";
    "diagonal": a per-item precision model tuned from the chains, ``metrics.PrecisionModel``;
    "dense": that model in a per-item basis tuned from the chains, ``rdfast.sampling.rotation``;
    "auto": "dense" where the path allows it, else "diagonal", ``resolved``),
    the step-size jitter j ∈ [0, 1), or the frozen ``tuning`` of a tuning round (then ``adapt``
    is None and the metric, if diagonal, is replayed too)."""

    n_chains: int = 16
    leapfrog_steps: int = 10
    step_size: Any = 0.01
    target_accept: float = 0.65
    adapt: Optional[str] = "ema"
    tuning: Optional[Tuning] = None
    metric: str = "identity"
    jitter: float = 0.0

    @classmethod
    def of(cls, n_chains=16, leapfrog_steps=10, step_size=0.01, target_accept=0.65, adapt=DEFAULT_ADAPT,
           tuning=None, metric="identity", jitter=0.0) -> "HMCConfig":
        n_chains = check_int("n_chains", n_chains)
        leapfrog_steps = check_int("leapfrog_steps", leapfrog_steps)
        if step_size != "auto":
            step_size = check_positive_float("step_size", step_size)
        if not (is_real(target_accept) and 0 < target_accept < 1):
            raise ValueError(f"target_accept: expected a number in (0, 1), got {target_accept!r}")
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {list(METRICS)}, got {metric!r}")
        if not is_real(jitter) or not 0 <= jitter < 1:
            raise ValueError(f"jitter: expected a number in [0, 1) (each step size is drawn from "
                             f"eps * U(1 - jitter, 1 + jitter)), got {jitter!r}")
        if tuning is not None:
            tuning = as_tuning(tuning)
            if adapt == DEFAULT_ADAPT:
                adapt = None
            elif adapt is not None:
                raise ValueError("adapt: a replayed tuning is frozen; pass adapt=None (or leave it out)")
        elif adapt == DEFAULT_ADAPT:
            adapt = "ema"
        adaptation.make(adapt, float(target_accept))  # a clear error for an unknown rule, now
        return cls(n_chains, leapfrog_steps, step_size, float(target_accept), adapt, tuning, metric, float(jitter))

    def rule(self):
        """The step-size rule of this run (None: frozen)."""
        return adaptation.make(self.adapt, self.target_accept)

    def resolved(self, problem: Problem) -> "HMCConfig":
        """This configuration with metric "auto" made concrete for ``problem``: "dense" where the
        path is rotation-invariant (the standard normal prior, no encoder), else "diagonal"."""
        if self.metric != "auto":
            return self
        return dataclasses.replace(self, metric="dense" if problem.rotation_invariant else "diagonal")

    def check_against(self, path: torch.Tensor, problem: Problem) -> None:
        if self.metric == "dense" and not problem.rotation_invariant:
            raise ValueError("metric: 'dense' rotates the chains' coordinates, which needs a rotation-invariant "
                             "path: the standard normal prior without an encoder; use metric='diagonal'")
        if self.tuning is not None:
            self.tuning.check_against(path, problem.x.shape[0], problem.latent_dim, self.metric)

    def items(self, start: int, stop: int) -> "HMCConfig":
        if self.tuning is None:
            return self
        return dataclasses.replace(self, tuning=self.tuning.select(slice(start, stop)))

    def frozen(self, tuning: Tuning) -> "HMCConfig":
        """This configuration replaying ``tuning`` (round 2)."""
        return dataclasses.replace(self, adapt=None, tuning=tuning)


@dataclass(frozen=True)
class RunConfig:
    """record: how many evenly spaced transitions (the last included) or which; seed: the int key
    of every random stream; backend; batch_size: items per pass (None: all); progress; checkpoint
    path, checkpoint_every (seconds if float, transitions if int), resume path; cuda_graphs
    (None, True, False: ``rdfast.runtime.device_loop``); label: the name the progress bar shows
    (``progress="name"`` turns the bars on under that name)."""

    seed: int
    record: Any = 100
    backend: str = "auto"
    batch_size: Optional[int] = None
    progress: bool = False
    checkpoint: Any = None
    checkpoint_every: Any = 600.0
    resume: Any = None
    cuda_graphs: Optional[bool] = None
    label: Optional[str] = None

    @classmethod
    def of(cls, record=100, seed=None, generator=None, backend="auto", batch_size=None, progress=False,
           checkpoint=None, checkpoint_every=600.0, resume=None, cuda_graphs=None) -> "RunConfig":
        label = None
        if isinstance(progress, str):
            label, progress = progress, True
        elif not isinstance(progress, bool):
            raise TypeError(f"progress: expected True, False or a name for the progress bars, got {progress!r}")
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size)
        if cuda_graphs not in (None, True, False):
            raise ValueError(f"cuda_graphs: expected None, True or False, got {cuda_graphs!r}")
        parse_every(checkpoint_every)
        return cls(resolve_seed(seed, generator), check_record(record), backend, batch_size, progress,
                   check_path("checkpoint", checkpoint), checkpoint_every, check_path("resume", resume), cuda_graphs,
                   label)

    def named(self, default: str) -> "RunConfig":
        """This run with ``default`` as its progress bars' name unless the caller named them."""
        return dataclasses.replace(self, label=self.label or default)

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def check_parts(self, tags) -> None:
        """Before a multi-run call works: its files ``<path>.<tag>`` (``rdfast.runtime.checkpoint.check_parts``)."""
        check_parts(self.checkpoint, self.resume, tags)

    def part(self, tag: str, **changes) -> "RunConfig":
        """This run as one part of a multi-run call: its own checkpoint file ``<path>.<tag>``
        (``rdfast.runtime.checkpoint.part_paths``)."""
        paths = {"checkpoint": None, "resume": None, **part_paths(self.checkpoint, self.resume, tag)}
        return dataclasses.replace(self, **paths, **changes)


PROBLEM_ARGS = ("distortion", "logvar", "prior", "latent_dim", "encoder")
HMC_ARGS = ("n_chains", "leapfrog_steps", "step_size", "target_accept", "adapt", "tuning", "metric", "jitter")
RUN_ARGS = ("record", "seed", "generator", "backend", "batch_size", "progress", "checkpoint", "checkpoint_every",
            "resume", "cuda_graphs")


def split_arguments(caller: str, kwargs: dict, allowed=PROBLEM_ARGS + HMC_ARGS + RUN_ARGS) -> tuple:
    """``kwargs`` of ``rdfast.ais`` passed through another function, as (problem, hmc, run)
    keyword dicts; a TypeError names one that ``caller`` does not take."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword arguments {unknown}")
    return tuple({name: kwargs[name] for name in group if name in kwargs} for group in (PROBLEM_ARGS, HMC_ARGS, RUN_ARGS))
