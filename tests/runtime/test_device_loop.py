"""The device-resident loop (rdfast.runtime.device_loop): the clock, the runner, segments.

The keyed random numbers must not depend on whether the step is an int or a 0-d tensor on the
device (the backends' ops are checked alike in tests/backends/test_conformance.py). The driver
always runs on the device clock; runs cut into segments differently (records, checkpoints) agree
bit for bit.
"""
import contextlib
import math
import types
import warnings

import pytest
import torch

import rdfast
from rdfast import backends
from rdfast.sampling import rng
from rdfast.backends import native
from rdfast.runtime import device_loop
from rdfast.runtime.device_loop import DeviceClock, TransitionRunner
from rdfast.testing import linear_problem

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


GPU_BACKENDS = [name for name in ("torch", "cuda") if torch.cuda.is_available() and backends.runs(name, torch.device("cuda"))]


@pytest.mark.parametrize("device", DEVICES)
def test_random_numbers_keyed_by_a_step_tensor(device, monkeypatch):
    """An int step and a 0-d int64 step on the device give the same numbers, compiled or not (the
    compiled CPU normals within 4e-15 of the torch ops': tests/fastpath/test_cpu_kernels.py)."""
    items = torch.tensor([0, 3, 2**32 + 1], device=device)

    def draws(step):
        return rng.normal(5, items, 4, 9, step, rng.STREAM_MOMENTUM), rng.uniform(5, items, 4, step, rng.STREAM_ACCEPT)

    steps = (1, 2**31 + 3)
    by_int = {step: draws(step) for step in steps}  # compiled words where this build has them
    by_tensor = {step: draws(torch.tensor(step, device=device)) for step in steps}
    monkeypatch.setattr(rng, "_compiled", lambda device_type: False)
    by_torch_ops = {step: draws(torch.tensor(step, device=device)) for step in steps}
    for step in steps:
        for g, w in zip(by_tensor[step], by_int[step]):
            assert torch.equal(g, w)
        (normal, uniform), (normal_int, uniform_int) = by_torch_ops[step], by_int[step]
        assert torch.equal(uniform, uniform_int)
        assert (normal - normal_int).abs().max() <= (4e-15 if device == "cpu" else 0.0)


def test_a_step_tensor_is_checked():
    items = torch.arange(3)
    for bad in (torch.tensor(7.0), torch.tensor([7]), torch.tensor(7, dtype=torch.int32)):
        with pytest.raises(TypeError, match="step"):
            native.philox_words(1, items, 2, 1, bad, 0)


def test_clock_gives_the_host_values():
    betas = rdfast.schedules.sigmoid(50, 3000.0)
    clock = DeviceClock(betas, 0, torch.device("cpu"))
    host = betas.tolist()
    for k in range(1, 51):
        clock.advance()
        assert int(clock.k) == k
        assert clock.beta.item() == host[k] and clock.dbeta.item() == host[k] - host[k - 1]


def test_runner_counts_transitions_and_rejects_graphs_off_cuda():
    clock = DeviceClock(torch.linspace(0, 1, 30, dtype=torch.float64), 3, torch.device("cpu"))
    seen = []
    runner = TransitionRunner(lambda: seen.append(int(clock.k)), clock, None)
    runner.run(5)
    runner.run(0)
    runner.run(2)
    assert seen == list(range(4, 11)) and not runner.captured
    with pytest.raises(ValueError, match="cuda_graphs"):
        TransitionRunner(lambda *a: None, clock, True)


def small_run(**kw):
    problem = linear_problem(3, 6, n_items=5, logvar=-0.5, seed=2, rowwise=True)
    args = dict(logvar=problem.logvar, n_chains=4, leapfrog_steps=3, seed=11, backend="cpu")
    args.update(kw)
    return rdfast.ais(problem.decoder, problem.x, rdfast.schedules.sigmoid(40, 20.0), **args)


def test_segments_do_not_change_the_result(tmp_path):
    """Records at every step, checkpoints every 3 transitions, batches of 2 items: bit-identical."""
    base = small_run(record=1)
    many = small_run(record=list(range(41)), checkpoint=tmp_path / "c.pt", checkpoint_every=3, batch_size=2)
    assert torch.equal(base.log_z[-1], many.log_z[-1]) and torch.equal(base.z, many.z)
    assert torch.equal(base.tuning.log_eps, many.tuning.log_eps)
    assert base.config["cuda_graphs"] is False


def test_cuda_graphs_argument_is_checked():
    with pytest.raises(ValueError, match="cuda_graphs"):
        small_run(cuda_graphs="yes")
    with pytest.raises(ValueError, match="cuda_graphs"):
        small_run(cuda_graphs=True)  # CPU tensors


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", GPU_BACKENDS + ["triton"])
@pytest.mark.parametrize("decoder_kind", ["linear", "mlp", "mlp-mixture-prior"])
def test_graph_replay_equals_the_eager_loop(backend, decoder_kind):
    """Replayed CUDA graphs make exactly the transitions the eager loop makes: with the generic
    autograd evaluator (nn.Linear), the MLP fast path (nn.Sequential) and a custom prior."""
    problem = linear_problem(8, 50, n_items=7, logvar=-1.0, seed=4)
    decoder = problem.decoder if decoder_kind == "linear" else torch.nn.Sequential(
        problem.decoder, torch.nn.Tanh(), torch.nn.Linear(50, 50).double())
    decoder.cuda()
    prior = None
    if decoder_kind == "mlp-mixture-prior":
        prior = rdfast.GaussianMixture([0.2, 0.3, 0.5], torch.randn(3, 8), [0.5, 1.0, 2.0])  # CPU parameters
    x = problem.x.cuda()
    schedule = rdfast.schedules.sigmoid(3 * 8 + 5, 50.0)  # warm-up, blocks of 8 and single replays
    runs = {graphs: rdfast.ais(decoder, x, schedule, logvar=problem.logvar, n_chains=16, leapfrog_steps=4,
                               prior=prior, record=[0, 9, 29], seed=3, backend=backend, cuda_graphs=graphs)
            for graphs in (False, True)}
    eager, graphed = runs[False], runs[True]
    assert graphed.config["cuda_graphs"] is True and eager.config["cuda_graphs"] is False
    for field in ("log_z", "distortion", "rate", "ess", "z", "log_w", "acceptance", "divergences"):
        assert torch.equal(getattr(graphed, field), getattr(eager, field)), field
    assert torch.equal(graphed.tuning.log_eps, eager.tuning.log_eps)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_graph_replay_equals_the_eager_loop_with_a_dense_metric(backend):
    """Round 1 of the tuned protocol with a dense metric (the basis refreshed between replays,
    rewriting buffers the captured graphs read) makes the eager loop's transitions."""
    problem = linear_problem(4, 20, n_items=3, logvar=-0.5, seed=4)
    decoder, x = problem.decoder.cuda(), problem.x.cuda()
    schedule = rdfast.schedules.sigmoid(64, 8.0)
    runs = {graphs: rdfast.ais(decoder, x, schedule, logvar=-0.5, n_chains=8, leapfrog_steps=3, record=5, seed=2,
                               backend=backend, metric="dense", jitter=0.5, step_size="auto", adapt="prob",
                               cuda_graphs=graphs)
            for graphs in (False, True)}
    eager, graphed = runs[False], runs[True]
    assert graphed.config["cuda_graphs"] is True
    for field in ("log_z", "distortion", "z", "log_w", "acceptance"):
        assert torch.equal(getattr(graphed, field), getattr(eager, field)), field
    assert torch.equal(graphed.tuning.rotation, eager.tuning.rotation)


def test_when_graphs_are_tried(monkeypatch):
    """cuda_graphs=None tries graphs only on CUDA, on torch >= 2.12 (a failed capture is safe there),
    and not again for a decoder whose capture failed; True and False are obeyed as given."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    decoder = torch.nn.Linear(2, 3)
    monkeypatch.setattr(device_loop, "_torch_version", lambda: (2, 13))
    assert device_loop.graphs_wanted(None, cuda, decoder) is None
    assert device_loop.graphs_wanted(None, cpu, decoder) is False
    assert device_loop.graphs_wanted(False, cuda, decoder) is False
    monkeypatch.setattr(device_loop, "_torch_version", lambda: (2, 11))
    assert device_loop.graphs_wanted(None, cuda, decoder) is False
    assert device_loop.graphs_wanted(True, cuda, decoder) is True
    monkeypatch.setattr(device_loop, "_torch_version", lambda: (2, 13))
    device_loop.remember_uncapturable(decoder)
    assert device_loop.graphs_wanted(None, cuda, decoder) is False
    assert device_loop.graphs_wanted(None, cuda, torch.nn.Linear(2, 3)) is None
    device_loop.remember_uncapturable(print)  # not weak-referenceable: ignored
    assert device_loop._torch_version() >= (2, 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(device_loop._torch_version() < device_loop.SAFE_TO_TRY_TORCH,
                    reason="a failed capture can crash this torch later (pytorch#180395)")
def test_a_decoder_that_synchronises_runs_eagerly_with_a_warning():
    problem = linear_problem(3, 6, n_items=2, logvar=-0.5, seed=2)
    inner = problem.decoder.cuda()

    def syncing(z):
        if z.sum().item() == math.inf:  # reads a value on the host: cannot be captured
            raise AssertionError
        return inner(z)

    args = dict(logvar=problem.logvar, latent_dim=3, n_chains=4, leapfrog_steps=2, record=1, seed=1)
    with pytest.warns(RuntimeWarning, match="CUDA graph"):
        fallback = rdfast.ais(syncing, problem.x.cuda(), rdfast.schedules.linear(12, 1.0), **args)
    eager = rdfast.ais(syncing, problem.x.cuda(), rdfast.schedules.linear(12, 1.0), cuda_graphs=False, **args)
    assert fallback.config["cuda_graphs"] is False and torch.equal(fallback.log_z, eager.log_z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the failure is remembered: no second attempt, no warning
        again = rdfast.ais(syncing, problem.x.cuda(), rdfast.schedules.linear(12, 1.0), **args)
    assert torch.equal(again.log_z, eager.log_z)
    with pytest.raises(RuntimeError, match="cuda_graphs"):
        rdfast.ais(syncing, problem.x.cuda(), rdfast.schedules.linear(12, 1.0), cuda_graphs=True, **args)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_words_equal_host_words():
    """The CUDA Philox kernel gives the CPU's words (uniforms are exact functions of the words)."""
    items = torch.tensor([0, 5, 2**33 + 1])
    for step in (0, 7, 2**31 + 1):
        host = rng.uniform(3, items, 4, step, rng.STREAM_ACCEPT)
        for key in (step, torch.tensor(step, device="cuda")):
            assert torch.equal(rng.uniform(3, items.cuda(), 4, key, rng.STREAM_ACCEPT).cpu(), host)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_run_matches_the_cpu_reference(backend):
    """A float64 run on the GPU (graphs, device clock) agrees with the torch reference on the CPU to
    rounding: the only differences are the libraries' last-ulp exp/log/sin/cos."""
    problem = linear_problem(4, 30, n_items=5, logvar=-1.0, seed=6)
    args = dict(logvar=problem.logvar, n_chains=8, leapfrog_steps=5, record=5, seed=2)
    schedule = rdfast.schedules.sigmoid(30, 10.0)
    on_cpu = rdfast.ais(problem.decoder, problem.x, schedule, backend="torch", **args)
    problem.decoder.cuda()
    on_gpu = rdfast.ais(problem.decoder, problem.x.cuda(), schedule, backend=backend, cuda_graphs=True, **args)
    assert on_gpu.config["cuda_graphs"] is True
    for field in ("log_z", "distortion", "z", "log_w"):
        torch.testing.assert_close(getattr(on_gpu, field), getattr(on_cpu, field), rtol=1e-8, atol=1e-8, msg=field)
    assert torch.equal(on_gpu.acceptance, on_cpu.acceptance)


def test_eager_transitions_run_under_a_guard_of_the_data_device(device_guards):
    """With the data on cuda:1, every eager transition runs with cuda:1 current, whichever device
    the caller made current (stand-ins for torch's device guard and for the data's device)."""
    seen = []
    clock = DeviceClock(torch.linspace(0, 1, 10, dtype=torch.float64), 0, torch.device("cpu"))
    runner = TransitionRunner(lambda: seen.append(device_guards[-1] if device_guards else None), clock, False)
    runner.device = torch.device("cuda", 1)
    runner.run(3)
    assert seen == [torch.device("cuda", 1)] * 3 and not device_guards


class FakeCuda:
    """Stand-ins for the torch.cuda calls of TransitionRunner, so that its schedule (warm-up,
    capture, replays of the 8-block and the single graph, failure handling) runs on the CPU: a
    "captured" transition is counted instead of run, and a replay runs the counted transitions."""

    def __init__(self, runner, fail=False):
        self.capturing, self.fail, self.replays, self.streams_set = None, fail, [], []
        run_one = runner._one
        fake = self

        class Graph:
            def __init__(self):
                self.size = 0

            def replay(self):
                fake.replays.append(self.size)
                for _ in range(self.size):
                    run_one()

        @contextlib.contextmanager
        def graph(g, pool=None, stream=None):
            assert stream is runner.stream and pool == "pool"
            self.capturing = g
            try:
                yield
            finally:
                self.capturing = None

        def one():
            if self.capturing is None:
                return run_one()
            if self.fail:
                raise RuntimeError("operation not permitted when stream is capturing")
            self.capturing.size += 1

        runner._one = one
        runner.warmup_left = device_loop.WARMUP_TRANSITIONS  # as on CUDA
        runner.stream = types.SimpleNamespace(wait_stream=lambda s: None)
        self.patches = dict(CUDAGraph=Graph, graph=graph, graph_pool_handle=lambda: "pool",
                            device=lambda device: contextlib.nullcontext(), stream=lambda s: contextlib.nullcontext(),
                            current_stream=lambda device=None: types.SimpleNamespace(wait_stream=lambda s: None),
                            set_stream=self.streams_set.append)


def fake_runner(monkeypatch, fail=False, required=False):
    clock = DeviceClock(torch.linspace(0, 1, 200, dtype=torch.float64), 0, torch.device("cpu"))
    seen = []
    runner = TransitionRunner(lambda: seen.append(int(clock.k)), clock, False)
    runner.required = required
    fake = FakeCuda(runner, fail)
    for name, value in fake.patches.items():
        monkeypatch.setattr(torch.cuda, name, value, raising=False)
    return runner, fake, seen


def test_runner_schedule_of_graph_replays(monkeypatch):
    """Warm-up transitions run eagerly, then 8-blocks and single transitions replay, in order."""
    runner, fake, seen = fake_runner(monkeypatch)
    for n in (1, 20, 3, 0, 17):
        runner.run(n)
    assert seen == list(range(1, 42)) and runner.captured and not runner.capture_failed
    assert sorted(runner.graphs) == [1, 8] and runner.graphs[8].size == 8 and runner.graphs[1].size == 1
    # 1 + 1 eager warm-up; then 19 = 2·8 + 3, then 3 singles, then 17 = 2·8 + 1
    assert fake.replays == [8, 8, 1, 1, 1, 1, 1, 1, 8, 8, 1]


def test_runner_falls_back_when_capture_fails(monkeypatch):
    runner, fake, seen = fake_runner(monkeypatch, fail=True)
    with pytest.warns(RuntimeWarning, match="could not capture"):
        runner.run(10)
    runner.run(5)
    assert seen == list(range(1, 16)) and not runner.captured and runner.capture_failed
    assert fake.replays == [] and len(fake.streams_set) == 1  # the stream current before capture is restored


def test_runner_raises_when_graphs_are_required_and_capture_fails(monkeypatch):
    runner, _, seen = fake_runner(monkeypatch, fail=True, required=True)
    with pytest.raises(RuntimeError, match="cuda_graphs"):
        runner.run(10)
    assert seen == [1, 2]  # the warm-up ran; nothing ran twice or was lost
