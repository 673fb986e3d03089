"""The HMC kernel's pieces: the typed chain state, and a metric written only in torch ops."""
import pytest
import torch

from rdfast import backends
from rdfast.fastpath import make_evaluator
from rdfast.runtime.device_loop import DeviceClock
from rdfast.sampling import rng
from rdfast.sampling.distortions import resolve
from rdfast.sampling.hmc import HMC, ChainState, ops_for
from rdfast.sampling.metrics import IdentityMetric
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
    kernel = HMC(evaluate, be, metric, 4, StandardNormal(3), keys)
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


def test_chain_state_round_trips_through_a_dict():
    _, state = run(IdentityMetric(), 0.1, "cpu", n_transitions=2)
    again = ChainState.from_dict(state.to_dict())
    assert all(torch.equal(getattr(again, k), v) for k, v in state.to_dict().items())
    assert set(state.to_dict()) == {"z", "g", "d", "logw", "eps", "n_accept", "n_diverge"}
