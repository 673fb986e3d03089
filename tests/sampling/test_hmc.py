"""The HMC kernel's pieces: the typed chain state, and a metric written only in torch ops."""
import subprocess
import sys

import pytest
import torch

from rdfast import backends
from rdfast.fastpath import make_evaluator
from rdfast.runtime.device_loop import DeviceClock
from rdfast.sampling import rng
from rdfast.sampling.distortions import resolve
from rdfast.sampling.hmc import HMC, ChainState, ops_for
from rdfast.sampling.metrics import IdentityMetric
from rdfast.sampling.paths import PriorPath
from rdfast.sampling.priors import StandardNormal
from rdfast.testing import linear_problem


class ScaledIdentity:
    """M⁻¹ = c I, in torch ops only (no kernel fuses it): p ~ N(0, I/c), K = ½ c‖p‖², drift ε c p."""

    layout = None

    def __init__(self, c):
        self.c = c

    def momentum(self, noise):
        return noise / self.c ** 0.5

    def kinetic(self, p):
        return 0.5 * self.c * (p.double() ** 2).sum(1)

    def velocity(self, p):
        return self.c * p


def run(metric, step_size, backend_name, n_transitions=6):
    pr = linear_problem(3, 8, n_items=4, logvar=-0.5, seed=3)
    be = backends.get(backend_name, torch.device("cpu"))
    M = 5
    keys = rng.Keys(7, torch.arange(4), M)
    evaluate = make_evaluator(pr.decoder, pr.x, M, resolve("gaussian_nll", pr.logvar, pr.x), be)
    kernel = HMC(evaluate, be, metric, 4, PriorPath(StandardNormal(3)), keys)
    state = kernel.init(keys.normal(0, rng.STREAM_INIT, 3), step_size)
    clock = DeviceClock(torch.linspace(0, 5.0, n_transitions + 1, dtype=torch.float64), 0, torch.device("cpu"))
    transition = kernel.transition(state, clock)
    for _ in range(n_transitions):
        clock.advance()
        transition.step()
    return kernel, state


@pytest.mark.parametrize("backend_name", ["torch", "cpu"])
def test_a_metric_in_torch_ops_runs_on_every_backend(backend_name):
    """HMC with M⁻¹ = cI and step ε is HMC with the identity and step ε√c (same keyed noise): the
    metric needs no kernel of its own; on a compiled backend its ops run on the reference."""
    c = 4.0
    kernel, scaled = run(ScaledIdentity(c), 0.05, backend_name)
    assert kernel.ops is backends.reference
    _, plain = run(IdentityMetric(), 0.05 * c ** 0.5, backend_name)
    assert torch.equal(scaled.n_accept, plain.n_accept) and scaled.n_accept.sum() > 0
    for name in ("z", "d", "logw"):
        torch.testing.assert_close(getattr(scaled, name), getattr(plain, name), rtol=1e-10, atol=1e-10)


def test_fused_metrics_run_on_the_compiled_backend():
    cpu = backends.get("cpu", torch.device("cpu"))
    assert ops_for(cpu, IdentityMetric()) is cpu and ops_for(cpu, ScaledIdentity(2.0)) is backends.reference


def test_an_unfused_metric_finds_the_reference_in_a_fresh_process(tmp_path):
    """A process that has loaded only the cpu backend still runs a metric no kernel fuses on the
    reference ops (other tests load the reference first, so this one starts a process of its own)."""
    code = ("import torch\n"
            "from rdfast import backends\n"
            "from rdfast.sampling.hmc import ops_for\n"
            "class Unfused:\n"
            "    layout = None\n"
            "print(ops_for(backends.get('cpu', torch.device('cpu')), Unfused()).name)\n")
    # cwd: a scratch folder, so the installed package is imported, not the source tree
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "torch", done.stderr[-2000:]


def test_chain_state_round_trips_through_a_dict():
    _, state = run(IdentityMetric(), 0.1, "cpu", n_transitions=2)
    again = ChainState.from_dict(state.to_dict())
    assert all(torch.equal(getattr(again, k), v) for k, v in state.to_dict().items())
    assert set(state.to_dict()) == {"z", "g", "d", "logw", "eps", "n_accept", "n_diverge"}


@pytest.mark.parametrize("backend_name", ["torch", "cpu"])
def test_hmc_with_a_diagonal_metric_leaves_the_gaussian_target_invariant(backend_name):
    """Chains started at exact samples of the linear-Gaussian posterior at β stay exact samples
    after HMC transitions with a (deliberately poor) diagonal metric: every coordinate's mean and
    variance over 2,000 independent chains per item is within 4.5 Monte Carlo standard errors."""
    from rdfast.sampling.metrics import DiagonalMetric

    K, P, N, M, beta = 3, 8, 2, 2000, 2.0
    pr = linear_problem(K, P, n_items=N, logvar=-0.5, seed=5)
    W, b, x = pr.W, pr.b, pr.x.double()
    a = 2.0 * beta * 0.5 * torch.exp(torch.tensor(0.5))  # 2βc with c = 1 / (2σ²), σ² = e^{−1/2}
    precision = torch.eye(K, dtype=torch.float64) + a * W.T @ W  # [K, K]
    cov = torch.linalg.inv(precision)
    mean = a * (x - b) @ W @ cov  # [N, K]
    gen = torch.Generator().manual_seed(11)
    chol = torch.linalg.cholesky(cov)
    z0 = (mean.repeat_interleave(M, 0) + torch.randn(N * M, K, generator=gen, dtype=torch.float64) @ chol.T)
    be = backends.get(backend_name, torch.device("cpu"))
    keys = rng.Keys(3, torch.arange(N), M)
    evaluate = make_evaluator(pr.decoder, pr.x, M, resolve("gaussian_nll", pr.logvar, pr.x), be)
    metric = DiagonalMetric(torch.tensor([[0.05, 1.0, 3.0], [2.0, 0.3, 0.7]], dtype=torch.float64), M)
    kernel = HMC(evaluate, be, metric, 5, PriorPath(StandardNormal(K)), keys)
    state = kernel.init(z0.contiguous(), 0.2)
    clock = DeviceClock(torch.tensor([0.0] + [beta] * 10, dtype=torch.float64), 0, torch.device("cpu"))
    transition = kernel.transition(state, clock)
    for _ in range(10):
        clock.advance()
        transition.step()
    accepted = state.n_accept.double().mean() / 10
    assert 0.2 < accepted < 0.99, accepted  # the chains moved
    z = state.z.view(N, M, K)
    sd = torch.sqrt(torch.diagonal(cov))  # [K]
    mean_z = (z.mean(1) - mean) / (sd / M ** 0.5)
    var_ratio = (z.var(1) / torch.diagonal(cov) - 1) / (2 / (M - 1)) ** 0.5
    assert mean_z.abs().max() < 4.5 and var_ratio.abs().max() < 4.5, (mean_z, var_ratio)
