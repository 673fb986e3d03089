"""Property-based tests (hypothesis) of input validation and of the fused ops' invariants."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdfast import backends
from rdfast.sampling import schedules
from rdfast.sampling.annealing import record_steps

CPU_BACKENDS = [name for name, info in backends.available().items() if info["available"] and "cpu" in info["devices"]
                and name != "triton"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FAST
@given(st.lists(values, min_size=0, max_size=8))
def test_schedule_validation_accepts_valid_and_names_the_argument(seq):
    try:
        out = schedules.validate(seq)
    except (ValueError, TypeError) as exc:
        assert str(exc).startswith("schedule:")
        return
    assert out[0] == 0 and torch.isfinite(out).all() and (out[1:] >= out[:-1]).all() and out.numel() >= 2


@FAST
@given(st.one_of(st.integers(-5, 50), st.lists(st.integers(-5, 50), max_size=6)), st.integers(1, 40))
def test_record_steps_are_sorted_indices_in_range(record, T):
    try:
        steps = record_steps(record, T)
    except (ValueError, TypeError) as exc:
        assert str(exc).startswith("record:")
        return
    assert steps.numel() >= 1 and (steps >= 0).all() and (steps <= T).all()
    assert (steps[1:] > steps[:-1]).all()
    if isinstance(record, int):
        assert int(steps[-1]) == T


def _state(B, K, dtype, gen):
    z0 = torch.randn(B, K, generator=gen, dtype=dtype)
    g0 = torch.randn(B, K, generator=gen, dtype=dtype)
    d0 = torch.rand(B, generator=gen, dtype=torch.float64) * 10
    return z0, g0, d0


special = st.sampled_from([0.0, 1.0, -1.0, 1e30, float("nan"), float("inf"), -float("inf")])


@pytest.mark.parametrize("name", CPU_BACKENDS)
@FAST
@given(B=st.integers(1, 9), K=st.integers(1, 5), dtype=st.sampled_from([torch.float32, torch.float64]),
       bad_d=special, bad_z=special, seed=st.integers(0, 2 ** 31))
def test_metropolis_never_leaks_non_finite_proposals(name, B, K, dtype, bad_d, bad_z, seed):
    be = backends.get(name, torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    z0, g0, d0 = _state(B, K, dtype, gen)
    z, g, d = torch.randn(B, K, generator=gen, dtype=dtype), torch.randn(B, K, generator=gen, dtype=dtype), d0 + 0.1
    d[0], z[-1, 0] = bad_d, bad_z
    p = torch.randn(B, K, generator=gen, dtype=dtype)
    h0 = 0.5 * (z0.double() ** 2).sum(1) + d0 + 0.5 * (p.double() ** 2).sum(1)
    u = torch.rand(B, generator=gen, dtype=torch.float64).clamp_min(1e-12)
    accepted, prob = torch.empty(B, dtype=torch.float64), torch.empty(B, dtype=torch.float64)
    n_acc, n_div = torch.zeros(B, dtype=torch.int64), torch.zeros(B, dtype=torch.int64)
    be.metropolis(z0, g0, d0, z, g, d, p, h0, u, 1.0, accepted, prob, n_acc, n_div)
    assert torch.isfinite(z0).all() and torch.isfinite(g0).all() and torch.isfinite(d0).all()
    assert ((n_acc == 0) | (n_acc == 1)).all() and ((n_div == 0) | (n_div == 1)).all()
    assert not (n_acc.bool() & n_div.bool()).any()  # a divergence is never accepted
    assert torch.equal(accepted, n_acc.double()) and ((prob >= 0) & (prob <= 1)).all()
    assert torch.equal(prob[n_div.bool()], torch.zeros(int(n_div.sum()), dtype=torch.float64))


@pytest.mark.parametrize("name", CPU_BACKENDS)
@FAST
@given(N=st.integers(1, 4), M=st.integers(1, 6), seed=st.integers(0, 2 ** 31), n_dead=st.integers(0, 3))
def test_record_ess_and_weights(name, N, M, seed, n_dead):
    be = backends.get(name, torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    logw = torch.randn(N * M, generator=gen, dtype=torch.float64) * 50
    d = torch.rand(N * M, generator=gen, dtype=torch.float64)
    logw.view(N, M)[:, : min(n_dead, M - 1)] = -math.inf  # dead chains, at least one alive per item
    d.view(N, M)[:, : min(n_dead, M - 1)] = math.inf  # their distortion must not matter
    lz, dist, ess = (torch.empty(N, dtype=torch.float64) for _ in range(3))
    be.record(logw, d, M, lz, dist, ess)
    assert torch.isfinite(lz).all() and torch.isfinite(dist).all()
    assert ((ess >= 1 - 1e-9) & (ess <= M + 1e-9)).all()
    assert ((dist >= 0) & (dist <= 1)).all()  # a convex combination of d in [0, 1)
