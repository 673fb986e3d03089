"""Accuracy against transitions: how many transitions an accurate estimate needs, per protocol.

    .venv/bin/python bench/accuracy.py run [--problems ...] [--protocols ...] [--steps ...] [--out FILE]
    .venv/bin/python bench/accuracy.py report [FILE]

Problems (docs/accuracy.md):
  linear-axis     f(z) = Wz + b, K = 100, P = 784, singular values log-spaced from 3 to 0.003,
                  WᵀW diagonal; squared error, β_max = 3,000; 8 items drawn from the model
                  (noise sd 0.05); the error of round 2's log Ẑ(β_max) against the closed form,
                  mean over items (with its standard error)
  linear-rotated  the same with W replaced by W Rᵀ for a random orthogonal R (WᵀW not diagonal)
  bdmc-vae50      BDMC gaps (upper − lower, nats, mean over items) on a VAE with 50 latents
                  trained on the built-in digits, at β = 1, 100, 1,000; squared error; 8 items
  bdmc-vae10      the same on a VAE with 10 latents (the demo's family at the trainer's default
                  width, 256 hidden units; the demo's own models have 128)
  loglik-vae10    log p̂(x) of 8 held-out digits under that VAE k = 10 (gaussian_nll with its
                  learnt variance) by rdfast.log_likelihood, annealing from the prior or from the
                  VAE's encoder q(z|x); the error is against the best estimate, the encoder's at the
                  largest T (itself a stochastic lower bound: the true errors are at least as large)
Every run: 8 chains, L = 10, float64, seed 0, the cpu backend; T transitions per round.
Protocols (keyword arguments of rdfast.rd_curve / rdfast.bdmc): the published one, the defaults
before the tuned protocol, each new piece alone on top of the published one, all together
(rdfast's defaults), the tuned protocol with the diagonal metric, and that with other step-size
jitters (at T = 1,000: the sweep behind the default j = 0.5); for loglik-vae10 the two starting
points, with the tuned defaults. Results go to a JSON file as they come (an interrupted run
continues).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

import rdfast

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "accuracy.json"
CHAINS, LEAPFROG, N_ITEMS, BETA_MAX = 8, 10, 8, 3000.0
BDMC_BETAS = (1.0, 100.0, 1000.0)

PUBLISHED = dict(radius=10.0, adapt="cumulative", metric="identity", jitter=0.0, step_size=0.01, tuned_schedule=False)
PROTOCOLS = {
    "published": PUBLISHED,
    "previous defaults": dict(PUBLISHED, radius=4.0, adapt="ema"),
    "+ diagonal metric": dict(PUBLISHED, metric="diagonal"),
    "+ dense metric": dict(PUBLISHED, metric="dense"),
    "+ jitter": dict(PUBLISHED, jitter=0.5),
    "+ tuned schedule": dict(PUBLISHED, tuned_schedule=True),
    "+ fast adaptation": dict(PUBLISHED, adapt="prob", step_size="auto"),
    "tuned, diagonal metric": dict(metric="diagonal"),
    "tuned (defaults)": {},
    "tuned (diagonal), jitter 0": dict(metric="diagonal", jitter=0.0),
    "tuned (diagonal), jitter 0.25": dict(metric="diagonal", jitter=0.25),
    "tuned (diagonal), jitter 0.75": dict(metric="diagonal", jitter=0.75),
}
STEPS = {"published": (250, 1000, 2000, 4000, 8000, 16000), "tuned (defaults)": (250, 1000, 2000, 4000),
         "tuned, diagonal metric": (250, 1000, 2000, 4000)}
OTHER_STEPS = (250, 1000, 4000)
JITTER_STEPS = (1000,)  # the jitter sweep behind the default j = 0.5
LOGLIK_PROTOCOLS = {"from the prior": False, "from the encoder": True}  # encoder=?
LOGLIK_STEPS = (10, 30, 100, 300, 1000, 3000, 10000)


def protocols_of(problem: str, names) -> list:
    """The protocols (of ``names``) that apply to ``problem``."""
    table = LOGLIK_PROTOCOLS if problem.startswith("loglik") else PROTOCOLS
    return [name for name in names if name in table]


def linear_problem(rotated: bool):
    """(decoder, x, exact log Z at β_max [N]) of the K = 100 linear decoder."""
    K, P = 100, 784
    gen = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(P, K, generator=gen, dtype=torch.float64))  # [P, K] orthonormal columns
    W = Q * torch.logspace(math.log10(3.0), math.log10(0.003), K, dtype=torch.float64)  # WᵀW = diag(s²)
    if rotated:
        R, _ = torch.linalg.qr(torch.randn(K, K, generator=gen, dtype=torch.float64))
        W = W @ R.T
    b = 0.1 * torch.randn(P, generator=gen, dtype=torch.float64)
    z = torch.randn(N_ITEMS, K, generator=gen, dtype=torch.float64)
    x = z @ W.T + b + 0.05 * torch.randn(N_ITEMS, P, generator=gen, dtype=torch.float64)
    decoder = torch.nn.Linear(K, P).double()
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    decoder.requires_grad_(False)
    exact = rdfast.analytic.linear_gaussian(W, b, x, [BETA_MAX], distortion="squared_error").log_z[-1]
    return decoder, x, exact


def vae(latent_dim: int):
    """(decoder, encoder) of a VAE trained on the built-in digits (cached), in float64."""
    from rdfast.apps.data import load_digits
    from rdfast.apps.train import trained

    model = trained("vae", latent_dim, HERE / ".models", data=load_digits().train)
    return tuple(model.models[part].double().eval().requires_grad_(False) for part in ("decoder", "encoder"))


def loglik_items() -> torch.Tensor:
    """The first 8 held-out digits [8, 64], float64."""
    from rdfast.apps.data import load_digits

    return load_digits().test[:N_ITEMS].double()


def run_one(problem: str, protocol: str, steps: int) -> dict:
    kwargs = dict(PROTOCOLS.get(protocol, {}))
    common = dict(n_chains=CHAINS, leapfrog_steps=LEAPFROG, seed=0, backend="cpu")
    start = time.monotonic()
    if problem.startswith("loglik"):
        decoder, encoder = vae(10)
        result = rdfast.log_likelihood(decoder, loglik_items(), steps, logvar=decoder.logvar,
                                       encoder=encoder if LOGLIK_PROTOCOLS[protocol] else None, **common)
        out = dict(per_item=result.per_item.tolist(), acceptance=result.acceptance.mean().item())
    elif problem.startswith("linear"):
        decoder, x, exact = linear_problem(problem == "linear-rotated")
        result = rdfast.rd_curve(decoder, x, BETA_MAX, steps, record=1, distortion="squared_error", **common, **kwargs)
        error = result.log_z[-1] - exact  # [N]
        out = dict(error=error.mean().item(), stderr=error.std().item() / math.sqrt(error.numel()),
                   acceptance=result.acceptance.mean().item())
    else:
        decoder, _ = vae(50 if problem == "bdmc-vae50" else 10)
        result = rdfast.bdmc(decoder, list(BDMC_BETAS), N_ITEMS, steps=steps, dtype=torch.float64,
                             distortion="squared_error", **common, **kwargs)
        gap = result.upper - result.lower  # [J, N]
        out = dict(gap=gap.mean(1).tolist(), stderr=(gap.std(1) / math.sqrt(gap.shape[1])).tolist(),
                   acceptance=result.acceptance.mean().item())
    return dict(out, problem=problem, protocol=protocol, steps=steps, seconds=time.monotonic() - start)


def cmd_run(args) -> None:
    path = Path(args.out)
    done = json.loads(path.read_text()) if path.exists() else []
    have = {(d["problem"], d["protocol"], d["steps"]) for d in done}
    for problem in args.problems:
        for protocol in protocols_of(problem, args.protocols):
            default_steps = (LOGLIK_STEPS if problem.startswith("loglik") else JITTER_STEPS if "jitter " in protocol
                             else STEPS.get(protocol, OTHER_STEPS))
            for steps in args.steps or default_steps:
                if (problem, protocol, steps) in have:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    entry = run_one(problem, protocol, steps)
                done.append(entry)
                path.write_text(json.dumps(done, indent=1))
                print(json.dumps(entry), flush=True)


def cmd_report(args) -> None:
    print(report(json.loads(Path(args.file).read_text())))


def _cell(entry) -> str:
    if "error" in entry:
        return f"{entry['error']:.1f} ± {entry['stderr']:.1f}"
    return " / ".join(f"{g:.2f} ± {se:.2f}" for g, se in zip(entry["gap"], entry["stderr"]))


def with_loglik_errors(rows: list) -> list:
    """The log-likelihood rows with ``error``/``stderr``: against the encoder's run at the largest T."""
    best = max((e for e in rows if e["protocol"] == "from the encoder"), key=lambda e: e["steps"])
    reference = torch.tensor(best["per_item"])  # [N]
    out = []
    for e in rows:
        error = torch.tensor(e["per_item"]) - reference
        out.append(dict(e, error=error.mean().item(), stderr=error.std().item() / math.sqrt(error.numel())))
    return out


def report(entries: list) -> str:
    """Markdown tables: one per problem, protocols × steps."""
    lines = []
    for problem in dict.fromkeys(e["problem"] for e in entries):
        rows = [e for e in entries if e["problem"] == problem]
        if problem.startswith("loglik"):
            rows = with_loglik_errors(rows)
        steps = sorted({e["steps"] for e in rows})
        what = ("log Ẑ − log Z at β_max (nats, mean ± SE over 8 items)" if problem.startswith("linear")
                else "log p̂(x) − the best estimate (nats, mean ± SE over 8 items)" if problem.startswith("loglik")
                else "BDMC gap at β = " + " / ".join(f"{b:g}" for b in BDMC_BETAS) + " (nats, mean ± SE over 8 items)")
        lines += [f"#### {problem}: {what}", "", "| protocol | " + " | ".join(f"T = {t:,}" for t in steps) + " |",
                  "|---|" + "---|" * len(steps)]
        for protocol in [*PROTOCOLS, *LOGLIK_PROTOCOLS]:
            cells = {e["steps"]: _cell(e) for e in rows if e["protocol"] == protocol}
            if cells:
                lines.append(f"| {protocol} | " + " | ".join(cells.get(t, "") for t in steps) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--problems", nargs="+",
                     default=["linear-axis", "linear-rotated", "bdmc-vae50", "bdmc-vae10", "loglik-vae10"])
    run.add_argument("--protocols", nargs="+", default=[*PROTOCOLS, *LOGLIK_PROTOCOLS])
    run.add_argument("--steps", nargs="+", type=int, default=None)
    run.add_argument("--out", default=str(DEFAULT_OUT))
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report")
    rep.add_argument("file", nargs="?", default=str(DEFAULT_OUT))
    rep.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
