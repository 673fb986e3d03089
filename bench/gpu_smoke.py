"""Step ``build`` of bench/gpu_check.sh: fail loudly unless the CUDA kernels of this build run here.

    python3 -P bench/gpu_smoke.py

Prints what ``rdfast backends`` prints, then checks, on the current CUDA device: the cuda backend
is available and has code for this GPU; the keyed Philox words of the CUDA kernel equal the CPU
kernel's, bit for bit; a short AIS run on the cuda backend (eagerly, and replayed from CUDA
graphs) equals the torch reference on the CPU. Exits with status 1 and the reason at the first
check that fails; prints "cuda kernels ran" when all pass.
"""
from __future__ import annotations

import sys

import torch

import rdfast
from rdfast import backends
from rdfast.apps import cli
from rdfast.backends import native
from rdfast.testing import linear_problem


def fail(message: str) -> None:
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def main() -> None:
    cli.main(["backends"])
    if not torch.cuda.is_available():
        fail(f"torch {torch.__version__} sees no CUDA device")
    device = torch.device("cuda", torch.cuda.current_device())
    try:
        backends.get("cuda", device)
    except ValueError as exc:
        fail(str(exc))

    items = torch.tensor([0, 5, 2**32 + 1])
    words = native.philox_words(7, items.to(device), 4, 3, 11, 1)
    torch.cuda.synchronize(device)
    if not torch.equal(words.cpu(), native.philox_words(7, items, 4, 3, 11, 1)):
        fail("the CUDA Philox kernel's words differ from the CPU kernel's")

    problem = linear_problem(3, 7, n_items=3, logvar=-0.5, seed=1)
    args = dict(logvar=problem.logvar, n_chains=4, leapfrog_steps=3, record=4, seed=0)
    schedule = rdfast.schedules.sigmoid(12, 5.0)
    reference = rdfast.ais(problem.decoder, problem.x, schedule, backend="torch", **args)
    problem.decoder.to(device)
    for graphs in (False, True):
        run = rdfast.ais(problem.decoder, problem.x.to(device), schedule, backend="cuda", cuda_graphs=graphs, **args)
        if run.config["backend"] != "cuda" or run.config["cuda_graphs"] is not graphs:
            fail(f"asked for the cuda backend with cuda_graphs={graphs}, ran {run.config}")
        for field in ("log_z", "distortion", "z", "log_w"):
            torch.testing.assert_close(getattr(run, field).cpu(), getattr(reference, field), rtol=1e-8, atol=1e-8,
                                       msg=lambda m, f=field, g=graphs: f"{f} (cuda_graphs={g}): {m}")
    print(f"cuda kernels ran on {device} ({torch.cuda.get_device_name(device)}) and matched the reference")


if __name__ == "__main__":
    main()
