"""GPU throughput of AIS transitions (skipped without a CUDA device); see bench/gpu_report.py.

Configurations: ``paper`` is the paper's MNIST setting, the deep_vae decoder
10→1024→1024→1024→784 (tanh, sigmoid output) on 50 items × 40 chains = 2,000 rows with L = 20
leapfrog steps; ``tiny`` (2→64→64→64, same rows and L) is the launch-bound regime. Float32,
Gaussian NLL σ² = 0.03, torch's default fp32 matmuls (no TF32).

Every provider (bench/providers.py, on the GPU) runs a short and a long block of transitions;
the report takes the marginal time per transition (long − short) / (LONG − SHORT), which leaves
out set-up, the initial evaluation, warm-up and CUDA-graph capture. Providers:
``rdfast-<backend>`` (``rdfast.ais`` with CUDA graphs; ``-eager`` without), ``published``
(bench/published.py, with its per-step host sync), ``floor-mm`` (the decoder's matrix products
alone, L forwards + L input-gradient backwards).
``peak-mm`` measures the device's fp32 matmul throughput on 8192² products: the roofline.
"""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from torch import nn

from configs import Config
from providers import available, make

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SHORT, LONG = 8, 40  # transitions per block
REPEATS = int(os.environ.get("RDFAST_GPU_REPEATS", "3"))  # bench/gpu_check.sh: 1
ROUNDS = 3
CONFIGS = {c.name: c for c in (  # L = 20: the paper's leap_steps
    Config("paper", (10, 1024, 1024, 1024, 784), nn.Tanh, nn.Sigmoid, 50, 40, LONG, leapfrog_steps=20),
    Config("tiny", (2, 64, 64, 64), nn.Tanh, nn.Sigmoid, 50, 40, LONG, leapfrog_steps=20),
)}
PROVIDERS = ("rdfast-cuda", "rdfast-cuda-eager", "rdfast-triton", "rdfast-torch", "published", "floor-mm")


@pytest.mark.parametrize("repeat", range(REPEATS))
@pytest.mark.parametrize("block", [SHORT, LONG])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_gpu_transitions(benchmark, config, provider, block, repeat):
    if not available(provider):
        pytest.skip(f"{provider} is not available here")
    cfg = dataclasses.replace(CONFIGS[config], block=block)
    run = make(cfg, provider, "cuda")
    benchmark.group = f"gpu-{config}"
    benchmark.extra_info.update(gpu=True, config=config, provider=provider, block=block, repeat=repeat,
                                rows=cfg.rows, sizes=list(cfg.sizes), leapfrog_steps=cfg.leapfrog_steps,
                                flops_per_transition=cfg.flops_per_transition(),
                                device=torch.cuda.get_device_name(), tf32=torch.backends.cuda.matmul.allow_tf32)
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def test_gpu_peak_mm(benchmark):
    """fp32 matmul throughput of this device on 8192 × 8192 products (the FLOP roofline)."""
    n = 8192
    a, b, c = (torch.randn(n, n, device="cuda") for _ in range(3))

    def run():
        for _ in range(5):
            torch.mm(a, b, out=c)
        torch.cuda.synchronize()
    benchmark.extra_info.update(gpu=True, provider="peak-mm", flops=5 * 2 * n ** 3,
                                device=torch.cuda.get_device_name(), tf32=torch.backends.cuda.matmul.allow_tf32)
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
