"""Time per AIS transition of every provider on every configuration (see providers.py).

One round = one block of ``cfg.block`` transitions after a warm-up round; each repeat is one
pytest-benchmark entry, so ratios between providers can be taken repeat by repeat. The thread
count is the session's (bench/conftest.py: ``RDFAST_BENCH_THREADS``); bench/cpu_bench.sh runs
the suite at one thread and at all cores.
"""
import os

import pytest
import torch

from configs import CONFIGS
from profile_block import profile_summary
from providers import PROVIDERS, applies, available, make

REPEATS = 5
ROUNDS = 3


@pytest.mark.parametrize("repeat", range(REPEATS))
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_transition(benchmark, config, provider, repeat):
    if not available(provider):
        pytest.skip(f"{provider} is not available here")
    cfg = CONFIGS[config]
    if not applies(cfg, provider):
        pytest.skip(f"{provider} does not apply to {config}")
    run = make(cfg, provider)
    benchmark.group = config
    benchmark.extra_info.update(config=config, provider=provider, repeat=repeat, block=cfg.block,
                                flops_per_transition=cfg.flops_per_transition(), threads=torch.get_num_threads(),
                                rows=cfg.rows, sizes=list(cfg.sizes), load=os.getloadavg()[0],
                                distortion=cfg.distortion, form=cfg.form, mlp_like=cfg.mlp_like,
                                leapfrog_steps=cfg.leapfrog_steps)
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("provider", ["rdfast-cpu", "published"])
@pytest.mark.parametrize("config", ["tiny", "mid", "vae50-bernoulli"])
def test_profile(benchmark, config, provider):
    """cProfile of one block (after a warm-up block): where the time goes, by function."""
    if not available(provider):
        pytest.skip(f"{provider} is not available here")
    cfg = CONFIGS[config]
    run = make(cfg, provider)
    run()
    benchmark.group = "profile"
    benchmark.extra_info.update(config=config, provider=provider, block=cfg.block, threads=torch.get_num_threads(),
                                profile=benchmark.pedantic(profile_summary, args=(run,), rounds=1, iterations=1))
