"""``rdfast demo``: the paper's kind of result on built-in data, in minutes on a laptop CPU.

Trains (or reloads) a VAE with latent sizes 2 and 10, a WGAN-GP generator and an adversarial
autoencoder (latent 10) on scikit-learn's 8×8 digits; then for each model the AIS
rate-distortion curve on held-out digits by the two-round protocol (squared error, as the
paper's MNIST curves), the AIS log-likelihood of the VAEs at β = 1 (Gaussian likelihood with
the learned variance, annealing from the VAE's encoder), BDMC gaps on simulated data at β's
that span the curve, and reconstructions at a low and a high rate. Writes rd_curves.png,
bdmc.png, reconstructions.png and results.json (every mean with its standard error over items,
and the settings that produced it).
"""
from __future__ import annotations

import dataclasses
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import figures
from .. import __version__
from ..runtime.atomic import write_atomic
from ..runtime.progress import Progress, bar_label
from ..sampling import schedules
from ..sampling.annealing import ais
from ..sampling.bdmc import bdmc
from ..sampling.config import TUNED_HMC
from ..sampling.curve import rd_curve
from ..sampling.loglik import log_likelihood
from .data import load_digits
from .train import trained

SUMMARY_BETAS = (1.0, 10.0, 100.0, 1000.0)  # β's of the terminal summary, on every curve exactly
MODELS = (("VAE k=2", "vae", 2), ("VAE k=10", "vae", 10), ("GAN k=10", "gan", 10), ("AAE k=10", "aae", 10))
BDMC_MODELS = ("VAE k=10", "GAN k=10")


@dataclass
class Settings:
    """Sizes of one demo run (the defaults target ≤ 5 minutes on two cores, training included,
    with every BDMC gap within 0.5 nats: docs/demo.md has the measurements behind them)."""

    n_items: int = 16  # held-out digits per curve
    n_chains: int = 32
    leapfrog_steps: int = 10
    steps: int = 1000  # transitions per round of an RD curve
    beta_max: float = 2000.0  # squared error: the last point is close to lossless
    record: int = 40  # points per curve
    summary_betas: tuple = SUMMARY_BETAS
    loglik_steps: int = 300  # transitions per round of the log-likelihoods (from the encoder)
    bdmc_betas: tuple = (0.5, 10.0, 500.0, 2000.0)
    bdmc_items: int = 16
    bdmc_chains: int = 16
    bdmc_steps: int = 2000  # transitions per round and direction
    low_rate_beta: float = 2.0  # reconstructions at a low rate
    hidden: int = 128  # units per hidden layer of every model (plenty for 8×8 digits)
    epochs: dict = None  # per model kind; None: the trainers' defaults

    @classmethod
    def quick(cls) -> "Settings":
        """For CI: a few seconds of everything, same code paths."""
        return cls(n_items=4, n_chains=4, leapfrog_steps=4, steps=40, record=20, loglik_steps=20, bdmc_items=3,
                   bdmc_chains=4, bdmc_steps=20, epochs={"vae": 3, "gan": 3, "aae": 3})


def _values(t) -> list:
    """A tensor as a JSON list (NaN, e.g. the standard error of one item, as null)."""
    return [None if v != v else v for v in t.tolist()]


def _curve_json(res) -> dict:
    """An RD curve's entry of results.json: means over items with their standard errors."""
    return {"beta": res.beta.tolist(), "rate": res.mean_rate.tolist(), "rate_se": _values(res.stderr("rate")),
            "distortion": res.mean_distortion.tolist(), "distortion_se": _values(res.stderr("distortion")),
            "log_z": res.mean_log_z.tolist(), "log_z_se": _values(res.stderr("log_z")), "ess": res.ess.mean(1).tolist(),
            "acceptance": res.acceptance.mean().item(), "divergences": int(res.divergences.sum()),
            "seconds": res.seconds + res.config.get("tuning", {}).get("seconds", 0.0)}  # both rounds


def _bdmc_json(bd) -> dict:
    """A BDMC entry of results.json: per β the mean bounds and gap with their standard errors."""
    return {"beta": bd.beta.tolist(), "lower": bd.lower_mean.tolist(), "lower_se": _values(bd.lower_stderr),
            "upper": bd.upper_mean.tolist(), "upper_se": _values(bd.upper_stderr), "gap": bd.gap.tolist(),
            "gap_se": _values(bd.gap_stderr)}


def loglik_json(ll) -> dict:
    """A log-likelihood entry of results.json: mean and standard error over items (nats), and per item."""
    return {"mean": ll.mean, "stderr": None if ll.stderr != ll.stderr else ll.stderr, "per_item": ll.per_item.tolist(),
            "ess": ll.ess.mean().item(), "encoder": bool(ll.config.get("encoder"))}


def curve_log_likelihood(res) -> dict:
    """The log-likelihood entry of a curve of d = −log p(x|z) recorded at β = 1: log Ẑ there."""
    at_one = (res.beta == 1.0).nonzero().reshape(-1)
    if at_one.numel() == 0:
        raise ValueError("res: the curve has no recorded point at beta = 1")
    per_item = res.log_z[at_one[0]]  # [N]
    stderr = (per_item.std() / per_item.numel() ** 0.5).item() if per_item.numel() > 1 else None
    return {"mean": per_item.mean().item(), "stderr": stderr, "per_item": per_item.tolist(),
            "ess": res.ess[at_one[0]].mean().item(), "encoder": False}


def _best_chain_reconstruction(decoder, res) -> torch.Tensor:
    """x̂ [N, P] of each item's highest-weight final chain."""
    best = res.log_w.argmax(1)  # [N]
    z = res.z[torch.arange(res.z.shape[0]), best]  # [N, K]
    with torch.no_grad():
        return decoder(z).reshape(z.shape[0], -1)


def training_options(settings: Settings, kind: str) -> dict:
    """The trainer's options of a model ``kind`` under ``settings`` (``rdfast.apps.train.trained``)."""
    return {"hidden": settings.hidden, **({} if settings.epochs is None else {"epochs": settings.epochs[kind]})}


def _run_settings(settings: Settings, backend: str, seed: int) -> dict:
    """What results.json records of how it was made."""
    return {**dataclasses.asdict(settings), "seed": seed, "backend": backend, "hmc": dict(TUNED_HMC),
            "schedule": f"round 1: sigmoid (radius {schedules.SIGMOID_RADIUS:g}) to beta_max; round 2: tuned (equal "
                        "thermodynamic length)",
            "distortion": "squared_error (curves, BDMC); gaussian_nll with the learned variance (log p(x))",
            "rdfast": __version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def _tasks(name: str, kind: str) -> list:
    """The demo's steps for one model, as shown on its overall progress bar."""
    return ["training", "RD curve", *(["log p(x)"] if kind == "vae" else []), *(["BDMC"] if name in BDMC_MODELS else []),
            "reconstructions"]


def run_demo(out, settings: Settings, backend: str = "auto", seed: int = 0, cache=None, log=tqdm.write,
             progress: bool = True) -> dict:
    """Run everything, write the figures and results.json into ``out``; return the results.
    ``progress``: one overall bar of the demo's steps, with each AIS run's bar nested below it
    (``VAE k=10 · RD curve · round 2/2``)."""
    start = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache) if cache is not None else out / "models"
    data = load_digits()
    x = data.test[: settings.n_items]  # [N, 64]
    results = {"data": "digits (scikit-learn, 8x8, held-out test items)", "distortion": "squared_error",
               "settings": _run_settings(settings, backend, seed), "models": {}}
    recon = {}
    n_tasks = sum(len(_tasks(name, kind)) for name, kind, _ in MODELS)
    with Progress(n_tasks, "rdfast demo", progress, unit="task") as overall:
        def step(name, task):
            overall.describe(bar_label("rdfast demo", name, task))
            return dict(n_chains=settings.n_chains, leapfrog_steps=settings.leapfrog_steps, backend=backend,
                        progress=bar_label(name, task) if progress else False)

        for name, kind, k in MODELS:
            step(name, "training")
            options = training_options(settings, kind)
            model = trained(kind, k, cache, data=data.train, progress=log, **options)
            dec = model.decoder.eval().requires_grad_(False)
            overall.update()
            curve = rd_curve(dec, x, settings.beta_max, settings.steps, seed=seed, distortion="squared_error",
                             record=settings.record, through=settings.summary_betas, **step(name, "RD curve"))
            entry = {"curve": _curve_json(curve), "training": {key: v[-1] for key, v in model.history.items()}}
            overall.update()
            if kind == "vae":
                ll = log_likelihood(dec, x, settings.loglik_steps, logvar=dec.logvar, seed=seed + 1,
                                    encoder=model.models["encoder"].eval(), **step(name, "log p(x)"))
                entry["log_likelihood"] = loglik_json(ll)
                overall.update()
            if name in BDMC_MODELS:
                common = step(name, "BDMC")
                common["n_chains"] = settings.bdmc_chains
                bd = bdmc(dec, list(settings.bdmc_betas), settings.bdmc_items, steps=settings.bdmc_steps,
                          distortion="squared_error", seed=seed + 2, **common)
                entry["bdmc"] = _bdmc_json(bd)
                overall.update()
            low = ais(dec, x, schedules.sigmoid(max(settings.steps // 4, 10), settings.low_rate_beta), seed=seed + 3,
                      distortion="squared_error", record=1, **step(name, "reconstructions"))
            recon[f"{name}\nrate {low.mean_rate[-1].item():.1f}"] = _best_chain_reconstruction(dec, low).numpy()
            recon[f"{name}\nrate {curve.mean_rate[-1].item():.1f}"] = _best_chain_reconstruction(dec, curve).numpy()
            results["models"][name] = entry
            overall.update()
    results["wall_seconds"] = time.monotonic() - start
    written = write_results(results, out)
    figures.reconstructions(x.numpy()[:8], {k: v[:8] for k, v in recon.items()}, data.image_shape,
                            out / "reconstructions.png")
    log(summary(results))
    log(f"wrote {', '.join(str(out / name) for name in [*written, 'reconstructions.png'])}")
    return results


def write_results(results: dict, out: Path) -> list[str]:
    """results.json (atomically) and its figures (``figures.of_results``; ``rdfast plot`` redraws
    them from the JSON); the names of the files."""
    write_atomic(out / "results.json", lambda f: f.write(json.dumps(results, indent=1).encode()))
    return ["results.json", *figures.of_results(results, out)]


def _pm(mean, se, digits=2) -> str:
    return f"{mean:.{digits}f}" + ("" if se is None else f" ± {se:.{digits}f}")


def _at_beta(curve: dict, beta: float):
    """The index of the recorded β nearest ``beta`` and whether it is that β (to 0.1 %)."""
    betas = curve["beta"]
    r = min(range(len(betas)), key=lambda i: abs(betas[i] - beta))
    return r, abs(betas[r] - beta) <= 1e-3 * beta


def summary(results: dict, curves: bool = True) -> str:
    """The terminal tables, every value a mean ± standard error over items: per model the rate and
    distortion at the settings' ``summary_betas`` (``curves``), log p(x) and the BDMC gaps."""
    models = results["models"]
    betas = results.get("settings", {}).get("summary_betas") or SUMMARY_BETAS
    lines = ["Rate (nats) and distortion (squared error per item) of the AIS RD curves at beta "
             "(mean ± standard error over items)",
             f"{'model':10} " + " ".join(f"{'beta = ' + format(b, 'g'):>27}" for b in betas)] if curves else []
    for name, res in (models.items() if curves else ()):
        cells = []
        for b in betas:
            r, exact = _at_beta(res["curve"], b)
            c = res["curve"]
            cell = f"R {_pm(c['rate'][r], (c.get('rate_se') or [None] * (r + 1))[r], 1)}, " \
                   f"D {_pm(c['distortion'][r], (c.get('distortion_se') or [None] * (r + 1))[r], 2)}"
            cells.append(f"{cell if exact else '-':>27}")
        lines.append(f"{name:10} " + " ".join(cells))
    loglik = [(name, res["log_likelihood"]) for name, res in models.items() if res.get("log_likelihood")]
    if loglik:
        lines.append("log p(x) (nats per digit; AIS from the encoder, a stochastic lower bound): " +
                     ", ".join(f"{name} {_pm(ll['mean'], ll.get('stderr'))}" for name, ll in loglik))
    for name, res in models.items():
        bd = res.get("bdmc")
        if bd:
            gaps = ", ".join(f"{b:g}: {_pm(g, e)}" for b, g, e in
                             zip(bd["beta"], bd["gap"], bd.get("gap_se") or [None] * len(bd["gap"])))
            lines.append(f"BDMC gap (upper − lower bound of log Z, nats) of {name} at beta {gaps}")
    if "wall_seconds" in results:
        lines.append(f"wall time {results['wall_seconds']:.0f} s")
    return "\n".join(lines)
