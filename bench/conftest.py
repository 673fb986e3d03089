"""Benchmark session set-up: fixed thread count for every library, bench/ importable, item order.

Threads: ``RDFAST_BENCH_THREADS`` (a count, or ``all`` for every core this process may use;
default 1, the most stable on a shared machine) for torch's intra-op pool and OpenMP (set before
torch is imported, so the compiled extension's OpenMP runtime sees it too). Items run repeat by repeat, each repeat measuring every provider
of a configuration in turn, so that slow drifts of a shared machine hit all providers alike.
"""
import os
import sys

_THREADS = os.environ.get("RDFAST_BENCH_THREADS", "1")
THREADS = len(os.sched_getaffinity(0)) if _THREADS == "all" else int(_THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)
os.environ["MKL_NUM_THREADS"] = str(THREADS)
sys.path.insert(0, os.path.dirname(__file__))

import torch  # noqa: E402

torch.set_num_threads(THREADS)


def pytest_collection_modifyitems(items):
    """Order: configuration, then repeat, then provider (as listed in PROVIDERS)."""
    from providers import PROVIDERS

    def key(item):
        spec = getattr(item, "callspec", None)
        if spec is None:
            return (1, "", 0, 0)
        p = spec.params
        order = PROVIDERS.index(p["provider"]) if p.get("provider") in PROVIDERS else -1  # GPU providers: as listed
        return (0, p.get("config", ""), p.get("repeat", -1), order)
    items.sort(key=key)
