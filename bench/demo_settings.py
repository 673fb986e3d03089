"""How many transitions the demo's BDMC needs: gaps (upper − lower bound, nats, mean ± SE over
items) on the demo's models at its β's, against transitions per round and chains.

    .venv/bin/python bench/demo_settings.py [--steps 300 1000 ...] [--chains 8 ...] [--models "VAE k=10" ...]

Every run: the demo's settings otherwise (rdfast.apps.demo.Settings: items, leapfrog steps, β's),
its trained models (cached in bench/.models), squared error, seed 2 as in the demo; prints one
JSON line per run with the CPU seconds it took (comparable under load, unlike wall time).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import torch

import rdfast
from rdfast.apps.data import load_digits
from rdfast.apps.demo import BDMC_MODELS, MODELS, Settings, training_options
from rdfast.apps.train import trained

HERE = Path(__file__).resolve().parent


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[300, 1000, 2000])
    parser.add_argument("--chains", nargs="+", type=int, default=[8])
    parser.add_argument("--models", nargs="+", default=list(BDMC_MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--items", type=int, default=Settings().bdmc_items)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings, data = Settings(), load_digits()
    for name, kind, k in MODELS:
        if name not in args.models:
            continue
        decoder = trained(kind, k, HERE / ".models", data=data.train,
                          **training_options(settings, kind)).decoder.eval().requires_grad_(False)
        for chains in args.chains:
            for steps in args.steps:
                start = cpu_seconds()
                bd = rdfast.bdmc(decoder, list(settings.bdmc_betas), args.items, steps=steps,
                                 n_chains=chains, leapfrog_steps=settings.leapfrog_steps, distortion="squared_error",
                                 seed=2, backend="cpu")
                print(json.dumps(dict(model=name, steps=steps, chains=chains, items=args.items, beta=bd.beta.tolist(),
                                      gap=bd.gap.tolist(), gap_se=bd.gap_stderr.tolist(),
                                      cpu_seconds=cpu_seconds() - start)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
