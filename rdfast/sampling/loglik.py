"""The AIS log-likelihood: log p̂(x) per item, with its standard error (Wu et al. 2017).

With d = −log p(x|z) (``gaussian_nll`` or ``bernoulli_nll``), AIS from the prior to β = 1 ends at
p(z) p(x|z), so log Ẑ = log p̂(x), a stochastic lower bound of log p(x): E[Ẑ] = p(x) exactly when
round 2 replays parameters fixed before it, as here (``rdfast.sampling.curve.two_rounds``). With an
``encoder`` the path starts from its q(z|x) instead (``rdfast.sampling.paths.EncoderPath``): the
same estimate, usually with far fewer intermediate distributions.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..runtime.distributed import checked_on_every_rank
from ..runtime.validation import check_int
from . import schedules
from .annealing import device_of
from .config import TUNED_HMC, HMCConfig, Problem, RunConfig, split_arguments
from .curve import ROUNDS, final_round
from .result import save_npz_atomic

LIKELIHOODS = ("gaussian_nll", "bernoulli_nll")
_ARRAYS = ("per_item", "ess", "acceptance", "divergences")


@dataclass
class LogLikelihood:
    """per_item [N]: log p̂(x_n) in nats; ess, acceptance [N]; divergences [N] (rejected
    non-finite proposals); n_dims: the numbers per item (P), for per-dimension values."""

    per_item: torch.Tensor
    ess: torch.Tensor
    acceptance: torch.Tensor
    divergences: torch.Tensor
    n_dims: int
    config: dict = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def n_items(self) -> int:
        return self.per_item.numel()

    @property
    def mean(self) -> float:
        """The mean over items of log p̂(x) (nats)."""
        return self.per_item.mean().item()

    @property
    def stderr(self) -> float:
        """The standard error of ``mean`` over items (it includes each item's Monte Carlo error)."""
        return (self.per_item.std() / math.sqrt(self.n_items)).item() if self.n_items > 1 else float("nan")

    def per_dim(self) -> tuple[float, float]:
        """(mean, stderr) of log p̂(x) per dimension (nats)."""
        return self.mean / self.n_dims, self.stderr / self.n_dims

    def bits_per_dim(self) -> tuple[float, float]:
        """(mean, stderr) of −log₂ p̂(x) per dimension."""
        scale = -1.0 / (self.n_dims * math.log(2.0))
        return self.mean * scale, abs(self.stderr * scale)

    def summary(self, unit: str = "nats") -> str:
        """One line: ``log p(x) = −85.62 ± 0.31 nats (N = 1000, ...)``; unit "nats" (per item),
        "nats/dim" or "bits/dim"."""
        if unit == "nats":
            value, se, label = self.mean, self.stderr, "log p(x)"
        elif unit == "nats/dim":
            (value, se), label = self.per_dim(), "log p(x) per dim"
        elif unit == "bits/dim":
            (value, se), label = self.bits_per_dim(), "−log₂ p(x) per dim"
        else:
            raise ValueError(f"unit: expected 'nats', 'nats/dim' or 'bits/dim', got {unit!r}")
        c = self.config
        start = "from the encoder" if c.get("encoder") else "from the prior"
        return (f"{label} = {value:.{2 if unit == 'nats' else 4}f} ± {se:.{2 if unit == 'nats' else 4}f} {unit} "
                f"(N = {self.n_items}, {c.get('n_chains')} chains, {c.get('n_transitions')} transitions {start}, "
                f"ESS {self.ess.mean().item():.1f}, acceptance {self.acceptance.mean().item():.2f})")

    def save(self, path) -> None:
        """Write an .npz file atomically."""
        arrays = {name: getattr(self, name).cpu().numpy() for name in _ARRAYS}
        arrays["meta"] = np.array(json.dumps({"n_dims": self.n_dims, "config": self.config, "seconds": self.seconds}))
        save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path) -> "LogLikelihood":
        with np.load(path, allow_pickle=False) as data:
            if any(name not in data for name in (*_ARRAYS, "meta")):
                raise ValueError(f"path: {path} is not an rdfast log-likelihood result")
            meta = json.loads(str(data["meta"]))
            return cls(**{name: torch.from_numpy(data[name]) for name in _ARRAYS}, n_dims=meta["n_dims"],
                       config=meta["config"], seconds=meta["seconds"])


def log_likelihood(decoder, x, steps=None, *, schedule=None, distortion="gaussian_nll", logvar=None, encoder=None,
                   prior=None, latent_dim=None, n_chains=16, leapfrog_steps=10, seed=None, generator=None,
                   tuned_schedule=True, distributed=None, **ais_kwargs) -> LogLikelihood | None:
    """log p̂(x) of every item of ``x`` by AIS to β = 1, with the two-round protocol.

    steps: transitions per round (round 1 on ``schedules.sigmoid(steps, 1.0)``), or ``schedule``
    (a path from 0 to 1); distortion: "gaussian_nll" (``logvar``, or a decoder returning
    (mean, logvar)) or "bernoulli_nll" (the decoder returns logits; x in [0, 1]); encoder: a
    callable x -> (mean, logvar) [N, K] of a diagonal Gaussian q(z|x): the chains start from q
    and anneal along q^{1−β} (p·p(x|z))^β (``rdfast.sampling.paths.EncoderPath``); HMC defaults to
    ``rd_curve``'s tuned settings; other keyword arguments go to ``rdfast.ais`` (checkpoint and
    resume cover both rounds, distributed shards the items). Round 2's parameters are fixed
    before it starts, so its Ẑ is an unbiased estimate of p(x). Returns a ``LogLikelihood``.
    """
    def check():
        if distortion not in LIKELIHOODS:
            raise ValueError(f"distortion: a log-likelihood needs d = −log p(x|z): one of {list(LIKELIHOODS)}, "
                             f"got {distortion!r}")
        problem_kw, hmc_kw, run_kw = split_arguments("log_likelihood", ais_kwargs)
        problem = Problem.of(decoder, x, distortion, logvar, prior, latent_dim, encoder, **problem_kw)
        hmc = HMCConfig.of(n_chains=n_chains, leapfrog_steps=leapfrog_steps, **{**TUNED_HMC, **hmc_kw})
        run = RunConfig.of(seed=seed, generator=generator, **{"record": 1, **run_kw})
        run.check_parts(ROUNDS)
        return problem, loglik_path(schedule, steps), hmc, run.named("log p(x)")

    problem, path, hmc, run = checked_on_every_rank(distributed, device_of(x), check)
    final = final_round(distributed, problem, path, hmc, run, tuned_schedule)
    if final is None:  # distributed="rank0", on a rank other than 0
        return None
    config = dict(final.config, encoder=encoder is not None, distortion=distortion)
    return LogLikelihood(final.log_z[-1], final.ess[-1], final.acceptance, final.divergences, problem.x[0].numel(),
                         config=config, seconds=final.seconds + final.config["tuning"]["seconds"])


def loglik_path(schedule, steps) -> torch.Tensor:
    """Round 1's path to β = 1: the sigmoid of ``steps`` transitions, or ``schedule`` (ending at 1)."""
    if (schedule is None) == (steps is None):
        raise ValueError("steps: pass exactly one of steps= (a sigmoid path to beta = 1) or schedule=")
    path = schedules.sigmoid(check_int("steps", steps), 1.0) if schedule is None else schedules.validate(schedule)
    if float(path[-1]) != 1.0:
        raise ValueError(f"schedule: a log-likelihood path ends at beta = 1, this one at {float(path[-1])}")
    return path
