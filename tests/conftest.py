"""Shared set-up: seeded random generators (the same numbers on every run of a test), and the
Triton kernels imported for the interpreter on a machine without a GPU.

Triton's interpreter (TRITON_INTERPRET=1) runs the kernels on CPU tensors, but only for
functions decorated while the variable was set (Triton's own library at ``import triton``,
rdfast's kernels at ``import rdfast.kernels``). So they are imported here, before any test can
import them for a GPU; the variable itself is set only by the tests that run the kernels
(``triton_interpreter``), so that ``backends.available()`` elsewhere sees this machine as it is.
"""
import contextlib
import importlib
import os
import sys
import types
import zlib

import numpy as np
import pytest
import torch

if not torch.cuda.is_available() and "triton" not in sys.modules:
    _before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        importlib.import_module("rdfast.backends.triton")
    finally:
        if _before is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = _before


def _seed(request) -> int:
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture
def gen(request) -> torch.Generator:
    """A CPU torch.Generator seeded from the test's id."""
    return torch.Generator().manual_seed(_seed(request))


@pytest.fixture
def np_rng(request) -> np.random.Generator:
    """A NumPy Generator seeded from the test's id."""
    return np.random.default_rng(_seed(request))


@pytest.fixture
def triton_interpreter(monkeypatch):
    """The triton backend module, runnable here (a GPU, or the interpreter on CPU tensors); skips
    with the reason otherwise."""
    backend = importlib.import_module("rdfast.backends.triton")
    if backend.IMPORT_ERROR:
        pytest.skip(backend.IMPORT_ERROR)
    if not torch.cuda.is_available():
        if not backend.interpreted():
            pytest.skip("triton was imported before TRITON_INTERPRET=1 was set; "
                        "tests/backends/test_triton.py::test_module_in_fresh_process runs the Triton tests anew")
        monkeypatch.setenv("TRITON_INTERPRET", "1")  # the registry offers triton on the CPU only with it
    assert backend.unavailable_reason() == "", backend.unavailable_reason()
    return backend


@pytest.fixture
def fake_gpus(monkeypatch):
    """A stand-in for the CUDA device queries: ``fake_gpus((7, 0), (9, 0))`` makes torch report
    GPUs of those compute capabilities and puts in a CUDA module built for ``architectures`` (CMake's
    form), so that the checks of the registry run without a GPU; nothing can be launched."""
    from rdfast.backends import native

    def install(*capabilities, architectures="80-real,90-real,90-virtual"):
        def index(device):
            return device if isinstance(device, int) else torch.device(device).index or 0

        module = types.SimpleNamespace(architectures=architectures, nvcc_version="13.0.88", device_status=lambda: "",
                                       device_count=lambda: len(capabilities), driver_version=lambda: 13000)
        monkeypatch.setattr(native, "_C_cuda", module)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capabilities[index(device)])
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"stand-in GPU {index(device)}")
    return install


@pytest.fixture
def device_guards(monkeypatch):
    """A stand-in for torch's device guard: inside ``torch.cuda.device(d)`` the returned list ends
    with d (the device made current); it is empty outside every guard."""
    current = []

    @contextlib.contextmanager
    def guard(device):
        current.append(torch.device(device))
        try:
            yield
        finally:
            current.pop()

    monkeypatch.setattr(torch.cuda, "device", guard)
    return current


@pytest.fixture
def tuned_run():
    """``tuned_run(problem, steps, metric, tuned_round)`` -> (schedule, ais keyword arguments) of
    the tuned protocol on a linear problem: round 1 (the 'prob' rule, jitter, ε found on the
    prior), or round 2 (replaying a round 1 on the thermodynamic schedule, another seed)."""
    import rdfast

    def settings(problem, steps: int, metric: str, tuned_round: str):
        schedule = rdfast.schedules.sigmoid(steps, 8.0)
        args = dict(logvar=-0.5, n_chains=4, leapfrog_steps=3, record=5, seed=2, backend="cpu", metric=metric,
                    jitter=0.5, step_size="auto")
        if tuned_round == "round 1":
            return schedule, dict(args, adapt="prob")
        first = rdfast.ais(problem.decoder, problem.x, schedule, adapt="prob", **args)
        return rdfast.schedules.thermodynamic(first.tuning, steps), dict(args, tuning=first, seed=3)
    return settings
