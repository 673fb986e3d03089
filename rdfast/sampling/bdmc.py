"""Bidirectional Monte Carlo: stochastic lower and upper bounds of log Z_β(x) on simulated data.

For each β*, simulate items whose latent is an exact sample of q*_β*(z|x):
z* ~ p, then x ~ N(f(z*), e^v/β*) for gaussian_nll (so p(x|z)^β* ∝ N(x; f(z), e^v/β*)) or
x ~ N(f(z*), 1/(2β*)) for squared_error (exp(−β*‖x − f‖²) ∝ N(x; f, 1/(2β*))).

* Forward AIS from the prior along 0 → β* gives log Ẑ_fwd, with E[log Ẑ_fwd] ≤ log Z_β*(x).
* Reverse AIS starts every chain of item n at z*_n and anneals β* → 0 (weights
  log w += (β_k − β_{k−1}) · d at the current state, transitions in reverse order); since
  E[w] = Z_0/Z_β* = 1/Z_β*, the estimate −logmeanexp(log w) is a stochastic upper bound.

Both directions replay one tuning: round 1 anneals forward from the prior and tunes step sizes,
the metric and the schedule as functions of β (``rdfast.sampling.tuning``); with them frozen,
the forward and the reverse runs of round 2 walk the same β's in opposite directions with fresh
randomness. The tuning depends on x alone, never on z*, so the upper bound's exact start keeps
its guarantee and the lower bound's E[Ẑ] = Z holds.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..runtime.distributed import checked_on_every_rank, resolve
from ..runtime.progress import bar_label
from ..runtime.validation import check_data, check_int, infer_latent_dim
from . import priors, rng, schedules
from .annealing import anneal_items
from .config import TUNED_HMC, HMCConfig, Problem, RunConfig, split_arguments
from .curve import second_round_seed
from .result import save_npz_atomic

SIMULABLE = ("gaussian_nll", "squared_error", "bernoulli_nll")  # bernoulli_nll at β = 1 only
RUNS = ("tune", "fwd", "rev")  # the runs per β and the tags of their checkpoint files


@dataclass
class BDMCResult:
    """beta [J]; lower, upper [J, N] per item; x [J, N, *event] simulated data; z [J, N, K] latents."""

    beta: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    x: torch.Tensor
    z: torch.Tensor
    acceptance: torch.Tensor  # [J, 2] mean acceptance of the forward and reverse final rounds
    divergences: torch.Tensor  # [J, 2] total non-finite proposals, forward and reverse
    config: dict = field(default_factory=dict)

    @property
    def lower_mean(self) -> torch.Tensor:
        return self.lower.mean(1)

    @property
    def upper_mean(self) -> torch.Tensor:
        return self.upper.mean(1)

    @property
    def gap(self) -> torch.Tensor:
        """Mean upper bound minus mean lower bound [J] (nats)."""
        return self.upper_mean - self.lower_mean

    @property
    def lower_stderr(self) -> torch.Tensor:
        """Standard error over items of the mean lower bound [J]."""
        return _stderr(self.lower)

    @property
    def upper_stderr(self) -> torch.Tensor:
        """Standard error over items of the mean upper bound [J]."""
        return _stderr(self.upper)

    @property
    def gap_stderr(self) -> torch.Tensor:
        """Standard error over items of the mean gap [J] (both bounds are on the same items)."""
        return _stderr(self.upper - self.lower)

    def summary(self) -> str:
        lines = [f"BDMC: {self.lower.shape[1]} simulated items, {self.config.get('steps')} steps per direction "
                 "(mean ± standard error over items)",
                 f"{'beta':>12} {'lower':>22} {'upper':>22} {'gap':>18}"]
        for j in range(len(self.beta)):
            lines.append(f"{self.beta[j].item():12.5g} {_pm(self.lower_mean[j], self.lower_stderr[j]):>22} "
                         f"{_pm(self.upper_mean[j], self.upper_stderr[j]):>22} "
                         f"{_pm(self.gap[j], self.gap_stderr[j]):>18}")
        return "\n".join(lines)

    def save(self, path) -> None:
        arrays = {name: getattr(self, name).detach().cpu().numpy()
                  for name in ("beta", "lower", "upper", "x", "z", "acceptance", "divergences")}
        arrays["meta"] = np.array(json.dumps(self.config))
        save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path) -> "BDMCResult":
        with np.load(path, allow_pickle=False) as data:
            names = ("beta", "lower", "upper", "x", "z", "acceptance", "divergences")
            if any(name not in data for name in (*names, "meta")):
                raise ValueError(f"path: {path} is not an rdfast BDMC result")
            return cls(**{name: torch.from_numpy(data[name]) for name in names}, config=json.loads(str(data["meta"])))

    def plot(self, ax=None, curve=None):
        """Without ``curve``: lower/upper bounds per β. With an AISResult ``curve``: the RD
        curve with each β's gap annotated at its point (the paper's Fig. 9)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4))
        if curve is None:
            xs = np.arange(len(self.beta))
            ax.errorbar(xs, self.lower_mean.numpy(), fmt="v", label="lower (forward AIS)")
            ax.errorbar(xs, self.upper_mean.numpy(), fmt="^", label="upper (reverse AIS)")
            ax.set_xticks(xs, [f"β={b:.3g}\ngap {g:.2g}" for b, g in zip(self.beta.tolist(), self.gap.tolist())])
            ax.set_ylabel("log Z (nats)")
            ax.legend()
            return ax
        curve.plot(ax=ax)
        for b, g in zip(self.beta.tolist(), self.gap.tolist()):
            r = int(torch.argmin((curve.beta - b).abs()))
            xy = (curve.mean_distortion[r].item(), curve.mean_rate[r].item())
            ax.annotate(f"β={b:.3g}: gap {g:.2g}", xy, textcoords="offset points", xytext=(8, 8), fontsize=8,
                        arrowprops=dict(arrowstyle="-", color="0.5"))
        return ax


def _stderr(values: torch.Tensor) -> torch.Tensor:
    """Standard error over the last dimension (items) of the mean [J] (NaN for one item)."""
    return values.std(-1) / math.sqrt(values.shape[-1]) if values.shape[-1] > 1 else torch.full_like(values[..., 0], math.nan)


def _pm(mean, se) -> str:
    return f"{float(mean):.6g} ± {float(se):.2g}"


def path_to(schedule, beta_star: float, steps, radius: float) -> torch.Tensor:
    """0 → β*: ``schedule`` cut where it reaches β* (ending exactly at β*), or a sigmoid of ``steps``."""
    if schedule is None:
        return schedules.sigmoid(steps, beta_star, radius)
    full = schedules.validate(schedule)
    if full[-1] < beta_star:
        raise ValueError(f"schedule: ends at {full[-1].item()}, below beta {beta_star}")
    end = int(torch.searchsorted(full, torch.tensor(beta_star, dtype=torch.float64)))
    path = full[: end + 1].clone()
    path[-1] = beta_star
    if path.numel() < 2:
        raise ValueError(f"betas: {beta_star} must be above 0")
    return path


def simulate(decoder, prior, n_data: int, beta_star: float, distortion: str, logvar, dtype, device, seed: int,
             index: int):
    """(z* [n, K], x [n, *event]) with z* an exact sample of q*_β*(·|x), for items 0..n−1 (their
    random streams are keyed by these indices and by ``index``, the β's place in the list)."""
    items = torch.arange(n_data, device=device)
    z = prior.from_noise(rng.normal(seed, items, 1, prior.dim, 2 * index, rng.STREAM_DATA),
                         rng.uniform(seed, items, 1, 2 * index, rng.STREAM_DATA)).to(dtype)
    with torch.no_grad():
        out = decoder(z)
    if distortion == "bernoulli_nll":  # x ~ Bernoulli(σ(logits)): p(x|z) itself, β* = 1
        logits = out.reshape(n_data, -1)  # [n, P]
        u = rng.uniform(seed, items, logits.shape[1], 2 * index + 1, rng.STREAM_DATA).view(n_data, -1)
        return z, (u < torch.sigmoid(logits.double())).to(dtype).reshape(out.shape)
    if distortion == "gaussian_nll":
        if isinstance(out, (tuple, list)):
            mean, lv = out[0], out[1].reshape(n_data, -1)  # [n, P]
        elif logvar is None:
            raise ValueError("logvar: gaussian_nll simulation needs logvar= or a decoder returning (mean, logvar)")
        else:
            mean, lv = out, torch.as_tensor(logvar, dtype=dtype, device=device).detach().reshape(-1)  # [1] or [P]
        std = torch.exp(0.5 * lv.to(dtype)) / beta_star ** 0.5
    else:
        mean = out
        std = torch.tensor((2.0 * beta_star) ** -0.5, dtype=dtype, device=device)
    mean_flat = mean.reshape(n_data, -1)  # [n, P]
    noise = rng.normal(seed, items, 1, mean_flat.shape[1], 2 * index + 1, rng.STREAM_DATA).to(dtype)
    x = (mean_flat + std * noise).reshape(mean.shape)
    return z, x


def bdmc(decoder, betas, n_data: int | None = None, schedule=None, steps=None, *, distortion="gaussian_nll",
         logvar=None, prior=None, latent_dim=None, n_chains=16, leapfrog_steps=10, radius=schedules.SIGMOID_RADIUS, seed=None,
         generator=None, backend="auto", dtype=None, device=None, progress=False, checkpoint=None, resume=None,
         distributed=None, tuned_schedule=True, data=None, **ais_kwargs) -> BDMCResult | None:
    """Lower and upper bounds of log Z_β(x) at each β in ``betas`` on ``n_data`` simulated items.

    Per β: round 1 anneals forward on the path 0 → β — ``schedule`` cut at β (the paper: the RD
    run's own intermediate distributions) or ``schedules.sigmoid(steps, β, radius)`` — and tunes
    step sizes, the metric and the targets' speed as functions of β; then, with those parameters
    frozen, forward AIS (the lower bound) and reverse AIS from the exact latents (the upper
    bound) walk the same round-2 path, the tuned schedule of equal thermodynamic length
    (``tuned_schedule=False``: round 1's path), the reverse chains backwards. The tuning never
    sees z*, so each bound keeps its guarantee. Simulation: gaussian_nll x ~ N(f(z*), e^v/β),
    squared_error x ~ N(f(z*), 1/(2β)), bernoulli_nll x ~ Bernoulli(σ(f(z*))) at β = 1 only (a
    tempered Bernoulli is not a likelihood of binary data); or ``data=(x, z)``: pairs you simulated,
    z [n, K] an exact sample of q*_β(z|x) for the one β given (then n_data comes from them).
    ``dtype``/``device`` of the simulated data default to the decoder's parameters. ``checkpoint``/``resume``: one file per run,
    ``<path>.b<j>.<run>`` (run: tune, fwd, rev). ``distributed`` as in ``rdfast.ais``: every rank
    simulates all items (each keyed by its index) and each run is sharded over the ranks (files
    ``<path>.b<j>.<run>.rank{r}of{W}``). Other keyword arguments go to AIS (defaults: the tuned HMC
    of ``rd_curve``).
    """
    beta_list = schedules.float_list("betas", betas)
    if not beta_list or any(not (b > 0 and np.isfinite(b)) for b in beta_list):
        raise ValueError(f"betas: expected positive finite values, got {betas!r}")
    if distortion == "bernoulli_nll" and any(b != 1.0 for b in beta_list):
        raise ValueError(f"betas: bernoulli_nll is simulated exactly only at beta = 1 (a tempered Bernoulli is not "
                         f"the likelihood of binary data), got {beta_list}")
    if data is not None:
        if n_data is not None:
            raise ValueError("n_data: taken from data=(x, z); do not pass both")
        if len(beta_list) != 1:
            raise ValueError(f"betas: data=(x, z) holds exact samples for one beta, got {len(beta_list)} betas")
    else:
        n_data = check_int("n_data", n_data)
    if (schedule is None) == (steps is None):
        raise ValueError("steps: pass exactly one of steps= (a sigmoid path per beta) or schedule=")
    if steps is not None:
        check_int("steps", steps)
    if distortion not in SIMULABLE:
        raise ValueError(f"distortion: BDMC simulates data exactly only for {SIMULABLE}, got {distortion!r}")
    if not callable(decoder):
        raise TypeError(f"decoder: expected a callable z [rows, K] -> x_hat, got {type(decoder).__name__}")
    params = list(decoder.parameters()) if isinstance(decoder, torch.nn.Module) else []
    dtype = dtype or (params[0].dtype if params else torch.float32)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: the simulated data (default: the decoder's parameters' dtype) must be torch.float32 "
                        f"or torch.float64, got {dtype!r}")
    device = _device(device) if device is not None else (params[0].device if params else torch.device("cpu"))
    K = infer_latent_dim(decoder, prior, latent_dim)
    prior = priors.check(prior, K)
    if data is not None:
        given = user_data(data, distortion, K)
        n_data, dtype, device = given[0].shape[0], given[0].dtype, given[0].device
    elif not hasattr(prior, "from_noise"):
        raise TypeError("prior: BDMC needs a prior with from_noise(normal, uniform) to simulate exact latents")
    _, hmc_kw, run_kw = split_arguments("bdmc", ais_kwargs, allowed=(
        "step_size", "target_accept", "adapt", "metric", "jitter", "batch_size", "checkpoint_every", "cuda_graphs"))
    hmc = HMCConfig.of(n_chains=n_chains, leapfrog_steps=leapfrog_steps, **{**TUNED_HMC, **hmc_kw})
    if hmc.adapt is None:
        raise ValueError("adapt: BDMC tunes in round 1; pass a step-size rule ('prob', 'ema', 'cumulative')")
    run = RunConfig.of(record=1, seed=seed, generator=generator, backend=backend, progress=progress,
                       checkpoint=checkpoint, resume=resume, **run_kw)
    checked_on_every_rank(distributed, device,
                          lambda: run.check_parts([f"b{j}.{tag}" for j in range(len(beta_list)) for tag in RUNS]))
    ranks = resolve(distributed, device)
    if ranks is not None:  # every rank simulates every item (keyed by its index) and the runs are sharded
        run = run.replace(seed=ranks.agree(run.seed, n_data))
    sharded = ranks is not None
    out = {"lower": [], "upper": [], "x": [], "z": [], "acceptance": [], "divergences": []}
    for j, b in enumerate(beta_list):
        z_star, x = given if data is not None else simulate(decoder, prior, n_data, b, distortion, logvar, dtype,
                                                            device, run.seed, j)
        problem = Problem.of(decoder, x, distortion, logvar, prior, K)
        path = path_to(schedule, b, steps, radius)
        seeds = [second_round_seed(run.seed + 4 * j + i) for i in range(3)]

        def part(tag, index, name):
            return run.part(f"b{j}.{tag}", seed=seeds[index], label=bar_label(run.label or "bdmc", f"β={b:.3g}", name))

        tune = anneal_items(sharded, problem, path, hmc, part("tune", 0, "round 1/2 (tuning)"))
        path2 = schedules.thermodynamic(tune.tuning, path.numel() - 1) if tuned_schedule else path
        frozen = hmc.frozen(tune.tuning)
        fwd = anneal_items(sharded, problem, path2, frozen, part("fwd", 1, "round 2/2 forward"))
        rev = anneal_items(sharded, problem, path2.flip(0).contiguous(), frozen, part("rev", 2, "round 2/2 reverse"),
                           initial=z_star)
        out["lower"].append(fwd.log_z[-1])
        out["upper"].append(-rev.log_z[-1])
        out["x"].append(x.cpu())
        out["z"].append(z_star.cpu())
        out["acceptance"].append(torch.stack([fwd.acceptance, rev.acceptance], 1))
        out["divergences"].append(torch.stack([fwd.divergences, rev.divergences], 1))
    out = {k: torch.stack(v) for k, v in out.items()}
    config = dict(n_data=n_data, data="given" if data is not None else "simulated", n_chains=n_chains,
                  leapfrog_steps=leapfrog_steps, distortion=distortion,
                  seed=run.seed, steps=steps if schedule is None else "schedule", backend=fwd.config["backend"],
                  adapt=hmc.adapt, metric=fwd.config["metric"], jitter=hmc.jitter, tuned_schedule=bool(tuned_schedule))
    result = BDMCResult(beta=torch.tensor(beta_list, dtype=torch.float64), acceptance=out.pop("acceptance").mean(1),
                        divergences=out.pop("divergences").sum(1), **out, config=config)
    return result if ranks is None else ranks.deliver(result)


def _device(device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected a torch.device or a name such as 'cpu' or 'cuda:0', got {device!r}") from exc


def user_data(data, distortion: str, latent_dim: int) -> tuple:
    """(z [n, K], x [n, *event]) from ``data=(x, z)``, checked."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"data: expected a pair (x, z) of tensors, got {type(data).__name__}")
    x, z = data
    x = check_data(x)
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"data: z must be a tensor [n, {latent_dim}] (latent_dim), got "
                         f"{list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
    if z.shape[0] != x.shape[0]:
        raise ValueError(f"data: x has {x.shape[0]} items but z has {z.shape[0]}; they must pair up")
    if not torch.isfinite(z).all():
        raise ValueError("data: z contains NaN or inf")
    if distortion == "bernoulli_nll" and not ((x == 0) | (x == 1)).all():
        raise ValueError("data: x must be binary (0 or 1) for bernoulli_nll")
    return z.detach().to(device=x.device, dtype=x.dtype).contiguous(), x
