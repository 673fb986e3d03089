"""GPU throughput of AIS transitions (skipped without a CUDA device); see bench/gpu_report.py.

Configurations: ``paper`` is the paper's MNIST setting, the deep_vae decoder
10→1024→1024→1024→784 (tanh, sigmoid output) on 50 items × 40 chains = 2,000 rows with L = 20
leapfrog steps; ``tiny`` (2→64→64→64, same rows and L) is the launch-bound regime. Float32,
Gaussian NLL σ² = 0.03, torch's default fp32 matmuls (no TF32).

Every provider runs a short and a long block of transitions; the report takes the marginal time
per transition (long − short) / (LONG − SHORT), which leaves out set-up, the initial evaluation,
warm-up and CUDA-graph capture. Providers: ``rdfast-<backend>`` (``rdfast.ais`` with CUDA graphs;
``-eager`` without), ``published`` (bench/published.py on the GPU, with its per-step host sync),
``floor-mm`` (the decoder's matrix products alone, L forwards + L input-gradient backwards).
``peak-mm`` measures the device's fp32 matmul throughput on 8192² products: the roofline.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rdfast
from published import PublishedAIS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

LOGVAR = math.log(0.03)
LEAPFROG_STEPS = 20  # the paper's leap_steps
SHORT, LONG = 8, 40  # transitions per block
REPEATS, ROUNDS = 3, 3
CONFIGS = {  # name: (layer widths, latent first; items; chains)
    "paper": ((10, 1024, 1024, 1024, 784), 50, 40),
    "tiny": ((2, 64, 64, 64), 50, 40),
}
PROVIDERS = ("rdfast-cuda", "rdfast-cuda-eager", "rdfast-triton", "rdfast-torch", "published", "floor-mm")


def decoder_and_data(sizes, n_items):
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(n_in, n_out), nn.Tanh() if i < len(sizes) - 2 else nn.Sigmoid()]
    decoder = nn.Sequential(*layers).cuda().eval()
    x = torch.rand(n_items, sizes[-1], generator=torch.Generator().manual_seed(1)).cuda()
    return decoder, x


def flops_per_transition(sizes, rows):
    """Matmul FLOPs of L forwards and L input-gradient backwards: 2 · 2 · rows · Σ in·out per step."""
    return LEAPFROG_STEPS * 4 * rows * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def make(provider, sizes, n_items, n_chains, block):
    """A callable making ``block`` transitions of ``provider`` (then synchronising)."""
    decoder, x = decoder_and_data(sizes, n_items)
    if provider.startswith("rdfast-"):
        backend = provider.split("-")[1]
        schedule = rdfast.schedules.sigmoid(block, beta_max=1.0)
        graphs = not provider.endswith("-eager")

        def run():
            result = rdfast.ais(decoder, x, schedule, logvar=LOGVAR, n_chains=n_chains, leapfrog_steps=LEAPFROG_STEPS,
                                record=1, seed=0, backend=backend, cuda_graphs=graphs)
            assert result.config["cuda_graphs"] is graphs
        return run
    if provider == "published":
        ais = PublishedAIS(decoder, x, n_chains, LOGVAR, LEAPFROG_STEPS)
        betas = torch.linspace(0.0, 1.0, block + 1).tolist()
        return lambda: (ais.run(betas), torch.cuda.synchronize())
    weights = [m.weight.detach() for m in decoder if isinstance(m, nn.Linear)]  # [out, in]
    rows = n_items * n_chains
    acts = [torch.randn(rows, w, device="cuda") for w in sizes]
    deltas = [torch.empty_like(a) for a in acts]
    grad_t = torch.empty(sizes[0], rows, device="cuda")

    def floor():
        for _ in range(block * LEAPFROG_STEPS):
            for l, W in enumerate(weights):
                torch.mm(acts[l], W.t(), out=acts[l + 1])
            for l in range(len(weights), 1, -1):
                torch.mm(acts[l] if l == len(weights) else deltas[l], weights[l - 1], out=deltas[l - 1])
            torch.mm(weights[0].t(), (acts[1] if len(weights) == 1 else deltas[1]).t(), out=grad_t)
        torch.cuda.synchronize()
    return floor


def backend_runs(provider) -> bool:
    if not provider.startswith("rdfast-"):
        return True
    return rdfast.backends.available()[provider.split("-")[1]]["available"]


@pytest.mark.parametrize("repeat", range(REPEATS))
@pytest.mark.parametrize("block", [SHORT, LONG])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_gpu_transitions(benchmark, config, provider, block, repeat):
    if not backend_runs(provider):
        pytest.skip(f"{provider} is not available here")
    sizes, n_items, n_chains = CONFIGS[config]
    run = make(provider, sizes, n_items, n_chains, block)
    benchmark.group = f"gpu-{config}"
    benchmark.extra_info.update(gpu=True, config=config, provider=provider, block=block, repeat=repeat,
                                rows=n_items * n_chains, sizes=list(sizes), leapfrog_steps=LEAPFROG_STEPS,
                                flops_per_transition=flops_per_transition(sizes, n_items * n_chains),
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
