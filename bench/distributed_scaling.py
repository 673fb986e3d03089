"""Wall time of one AIS run over a fixed small MLP, sharded over the ranks torchrun starts.

    torchrun --standalone --nproc-per-node 2 bench/distributed_scaling.py

A tanh MLP 10-128-128-64 (float32, fixed weights), 64 items x 16 chains, 10 leapfrog steps,
200 transitions, backend "auto". Each repeat is timed on rank 0 from a barrier to the gathered
result (process start, imports and the process-group set-up are excluded); rank 0 prints every
repeat, the minimum, and the mean final log Z (the same for any number of ranks).
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.distributed as dist

import rdfast


def problem(n_items: int):
    """The fixed decoder and data (uniform in [0, 1))."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(10, 128), torch.nn.Tanh(), torch.nn.Linear(128, 128),
                                  torch.nn.Tanh(), torch.nn.Linear(128, 64)).requires_grad_(False)
    return decoder, torch.rand(n_items, 64, generator=gen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    decoder, x = problem(args.items)
    schedule = rdfast.schedules.sigmoid(args.steps, 1.0)
    kwargs = dict(logvar=-3.5, n_chains=16, leapfrog_steps=10, record=10, seed=0, distributed=True)
    rdfast.ais(decoder, x, schedule, **kwargs)  # warm-up; initialises the process group
    times = []
    for _ in range(args.repeats):
        dist.barrier()
        start = time.perf_counter()
        result = rdfast.ais(decoder, x, schedule, **kwargs)
        times.append(time.perf_counter() - start)
    if dist.get_rank() == 0:
        print(f"ranks={dist.get_world_size()} threads/rank={torch.get_num_threads()} "
              f"backend={result.config['backend']} times={[round(t, 3) for t in times]} min={min(times):.3f}s "
              f"mean_log_z={result.log_z[-1].mean().item():.6f}")


if __name__ == "__main__":
    main()
