"""What the device clock costs on the CPU: the driver's transitions fed by the clock (0-d tensors,
as on a GPU) against the same body fed by host numbers, alternating in one process.

    .venv/bin/python bench/device_clock_cost.py [CONFIG] [BLOCKS]     (default: tiny 6)

Prints ms per transition of each variant, sorted, one thread (see bench/configs.py).
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(__file__))

import torch  # noqa: E402

from configs import CONFIGS  # noqa: E402
from providers import make  # noqa: E402
from rdfast import device_loop  # noqa: E402


def host_numbers_one(runner):
    """TransitionRunner._one with k, β_k and Δβ_k as Python numbers (the loop before the clock)."""
    clock = runner.clock
    if not hasattr(clock, "host_k"):
        clock.host_k, clock.host_betas = int(clock.k), clock.betas.tolist()
    clock.host_k += 1
    k, betas = clock.host_k, clock.host_betas
    runner.body(k, betas[k], betas[k] - betas[k - 1])


def main(config="tiny", blocks="6"):
    torch.set_num_threads(1)
    cfg = CONFIGS[config]
    run = make(cfg, "rdfast-cpu")
    run()
    clock_one = device_loop.TransitionRunner._one
    times = {"device clock": [], "host numbers": []}
    for _ in range(int(blocks)):
        for name, one in (("device clock", clock_one), ("host numbers", host_numbers_one)):
            device_loop.TransitionRunner._one = one
            start = time.perf_counter()
            run()
            times[name].append(1e3 * (time.perf_counter() - start) / cfg.block)
    device_loop.TransitionRunner._one = clock_one
    for name, values in times.items():
        print(f"{config} {name}: " + " ".join(f"{v:.2f}" for v in sorted(values)) + " ms per transition")


if __name__ == "__main__":
    main(*sys.argv[1:])
