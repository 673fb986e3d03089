"""``rdfast demo``: the paper's kind of result on built-in data, in minutes on a laptop CPU.

Trains (or reloads) a VAE with latent sizes 2 and 10, a WGAN-GP generator and an adversarial
autoencoder (latent 10) on scikit-learn's 8×8 digits; then for each model the AIS
rate-distortion curve on held-out digits by the two-round protocol (squared error, as the
paper's MNIST curves), the AIS log-likelihood of the VAEs at β = 1 (Gaussian likelihood with
the learned variance), BDMC gaps at three β on simulated data, and reconstructions at a low
and a high rate. Writes rd_curves.png, bdmc.png, reconstructions.png and results.json.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import figures
from ..sampling import schedules
from ..sampling.annealing import ais
from ..sampling.bdmc import bdmc
from ..sampling.curve import rd_curve
from .data import load_digits
from .train import trained

MODELS = (("VAE k=2", "vae", 2), ("VAE k=10", "vae", 10), ("GAN k=10", "gan", 10), ("AAE k=10", "aae", 10))
BDMC_MODELS = ("VAE k=10", "GAN k=10")


@dataclass
class Settings:
    """Sizes of one demo run (the defaults target ≤ 5 minutes on two cores)."""

    n_items: int = 16  # held-out digits per curve
    n_chains: int = 16
    leapfrog_steps: int = 10
    steps: int = 1000  # transitions per AIS run
    beta_max: float = 2000.0  # squared error: the last point is close to lossless
    bdmc_betas: tuple = (0.5, 10.0, 500.0)
    bdmc_items: int = 8
    bdmc_steps: int = 300
    low_rate_beta: float = 2.0  # reconstructions at a low rate
    epochs: dict = None  # per model kind; None: the trainers' defaults

    @classmethod
    def quick(cls) -> "Settings":
        """For CI: a few seconds of everything, same code paths."""
        return cls(n_items=4, n_chains=4, leapfrog_steps=4, steps=40, bdmc_betas=(0.5, 10.0, 500.0), bdmc_items=3,
                   bdmc_steps=20, epochs={"vae": 3, "gan": 3, "aae": 3})


def _curve_json(res) -> dict:
    return {"beta": res.beta.tolist(), "rate": res.mean_rate.tolist(), "distortion": res.mean_distortion.tolist(),
            "log_z": res.mean_log_z.tolist(), "ess": res.ess.mean(1).tolist(),
            "acceptance": res.acceptance.mean().item(), "divergences": int(res.divergences.sum()),
            "seconds": res.seconds + res.config.get("tuning", {}).get("seconds", 0.0)}  # both rounds


def _best_chain_reconstruction(decoder, res) -> torch.Tensor:
    """x̂ [N, P] of each item's highest-weight final chain."""
    best = res.log_w.argmax(1)  # [N]
    z = res.z[torch.arange(res.z.shape[0]), best]  # [N, K]
    with torch.no_grad():
        return decoder(z).reshape(z.shape[0], -1)


def run_demo(out, settings: Settings, backend: str = "auto", seed: int = 0, cache=None, log=print) -> dict:
    """Run everything, write the figures and results.json into ``out``; return the results."""
    start = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache) if cache is not None else out / "models"
    data = load_digits()
    x = data.test[: settings.n_items]  # [N, 64]
    sched = schedules.sigmoid(settings.steps, settings.beta_max)
    common = dict(n_chains=settings.n_chains, leapfrog_steps=settings.leapfrog_steps, backend=backend,
                  progress=True)
    results = {"data": "digits (scikit-learn, 8x8, held-out test items)", "distortion": "squared_error",
               "settings": {k: v for k, v in vars(settings).items()}, "models": {}}
    recon = {}
    for name, kind, k in MODELS:
        options = {} if settings.epochs is None else {"epochs": settings.epochs[kind]}
        model = trained(kind, k, cache, data=data.train, progress=log, **options)
        dec = model.decoder.eval().requires_grad_(False)
        log(f"{name}: rate-distortion curve ({settings.steps} transitions x 2 rounds)")
        curve = rd_curve(dec, x, settings.beta_max, settings.steps, schedule=sched, seed=seed,
                         distortion="squared_error", record=100, **common)
        entry = {"curve": _curve_json(curve), "training": {key: v[-1] for key, v in model.history.items()}}
        if kind == "vae":
            log(f"{name}: AIS log-likelihood at beta = 1")
            ll = rd_curve(dec, x, 1.0, settings.steps, schedule=schedules.sigmoid(settings.steps, 1.0), seed=seed + 1,
                          distortion="gaussian_nll", logvar=dec.logvar, record=1, **common)
            entry["log_likelihood"] = {"mean": ll.mean_log_z[-1].item(), "per_item": ll.log_z[-1].tolist(),
                                       "ess": ll.ess[-1].mean().item()}
        if name in BDMC_MODELS:
            log(f"{name}: BDMC at beta = {list(settings.bdmc_betas)}")
            bd = bdmc(dec, list(settings.bdmc_betas), settings.bdmc_items, steps=settings.bdmc_steps,
                      distortion="squared_error", seed=seed + 2, **common)
            entry["bdmc"] = {"beta": bd.beta.tolist(), "lower": bd.lower_mean.tolist(),
                             "upper": bd.upper_mean.tolist(), "gap": bd.gap.tolist()}
        low = ais(dec, x, schedules.sigmoid(max(settings.steps // 4, 10), settings.low_rate_beta), seed=seed + 3,
                  distortion="squared_error", record=1, **common)
        recon[f"{name}\nrate {low.mean_rate[-1].item():.1f}"] = _best_chain_reconstruction(dec, low).numpy()
        recon[f"{name}\nrate {curve.mean_rate[-1].item():.1f}"] = _best_chain_reconstruction(dec, curve).numpy()
        results["models"][name] = entry
    results["wall_seconds"] = time.monotonic() - start
    write_outputs(results, out)
    figures.reconstructions(x.numpy()[:8], {k: v[:8] for k, v in recon.items()}, data.image_shape,
                            out / "reconstructions.png")
    log(summary(results))
    log(f"wrote {out / 'results.json'}, {out / 'rd_curves.png'}, {out / 'bdmc.png'}, {out / 'reconstructions.png'}")
    return results


def write_outputs(results: dict, out: Path) -> None:
    """results.json and the curve and BDMC figures (``rdfast plot`` calls this again)."""
    (out / "results.json").write_text(json.dumps(results, indent=1))
    figures.rd_curves(results, out / "rd_curves.png")
    figures.bdmc_gaps(results, out / "bdmc.png")


def summary(results: dict) -> str:
    lines = [f"{'model':10} {'rate@min D':>11} {'min D':>9} {'log p(x)':>10} {'BDMC gaps (nats)':>24}"]
    for name, res in results["models"].items():
        c = res["curve"]
        ll = res.get("log_likelihood", {}).get("mean")
        gaps = ", ".join(f"{g:.3g}" for g in res["bdmc"]["gap"]) if res.get("bdmc") else "-"
        lines.append(f"{name:10} {c['rate'][-1]:11.3f} {c['distortion'][-1]:9.4f} "
                     f"{'-' if ll is None else f'{ll:.2f}':>10} {gaps:>24}")
    if "wall_seconds" in results:
        lines.append(f"wall time {results['wall_seconds']:.0f} s")
    return "\n".join(lines)
