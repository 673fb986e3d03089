"""Step-size rules (rdfast.sampling.adapt): DESIGN §2's update, in float64, clamped."""
import types

import pytest
import torch

from rdfast.sampling import adapt


def info(accepted, n_accept):
    return types.SimpleNamespace(accepted=torch.tensor(accepted, dtype=torch.float64),
                                 accept_prob=torch.tensor(accepted, dtype=torch.float64),
                                 n_accept=torch.tensor(n_accept, dtype=torch.int64))


def expected(eps, grow):
    """ε·1.02 if grow else ε·0.98, clamped to [1e-4, 0.5], with the factors exactly 1.02 and 0.98."""
    factor = torch.where(grow, torch.tensor(1.02, dtype=torch.float64), torch.tensor(0.98, dtype=torch.float64))
    return torch.clamp(eps * factor, 1e-4, 0.5)


EPS = [1e-4, 0.5, 0.4999, 1.0001e-4, 0.01, 0.2]  # at and near the clamps


def test_ema():
    rule = adapt.make("ema", 0.65)
    eps = torch.tensor(EPS, dtype=torch.float64)
    state = rule.init(eps, 6)
    assert torch.equal(state["accept_stat"], torch.full((6,), 0.65, dtype=torch.float64))
    stat = state["accept_stat"].clone()
    for accepted in ([1, 0, 1, 0, 0, 1], [1, 1, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1]):
        before = eps.clone()
        rule.update(state, eps, info(accepted, [0] * 6), t=1)
        stat = stat * 0.9 + (1.0 - 0.9) * torch.tensor(accepted, dtype=torch.float64)
        assert torch.equal(state["accept_stat"], stat)
        assert torch.equal(eps, expected(before, stat > 0.65))


def test_cumulative_uses_the_rate_since_the_start():
    rule = adapt.make("cumulative", 0.65)
    eps = torch.tensor(EPS, dtype=torch.float64)
    state = rule.init(eps, 6)
    n_accept = [0, 3, 7, 6, 2, 10]
    for t in (10, torch.tensor(10)):  # the count as a number or as the device clock's 0-d tensor
        e = eps.clone()
        rule.update(state, e, info([0] * 6, n_accept), t)
        assert torch.equal(e, expected(eps, torch.tensor(n_accept, dtype=torch.float64) / 10 > 0.65))


def test_accept_probability_rule_moves_each_items_log_step():
    """log ε_n += 0.5 (mean accept probability of item n's chains − target), shared by its chains."""
    rule = adapt.make("prob", 0.65)
    eps = torch.tensor([0.1, 0.1, 99.9, 99.9, 1e-6, 1e-6], dtype=torch.float64)  # 3 items × 2 chains
    state = rule.init(eps, 2)
    probs = [1.0, 0.8, 1.0, 1.0, 0.0, 0.2]
    before = eps.clone()
    rule.update(state, eps, types.SimpleNamespace(accept_prob=torch.tensor(probs, dtype=torch.float64)), t=1)
    mean = torch.tensor([0.9, 1.0, 0.1], dtype=torch.float64).repeat_interleave(2)
    assert torch.equal(eps, torch.clamp(before * torch.exp(0.5 * (mean - 0.65)), 1e-6, 100.0))
    assert eps[2] == 100.0 and eps[4] == 1e-6  # clamped


def test_rules_by_name():
    assert adapt.make(None, 0.65) is None
    assert set(adapt.RULES) == {"ema", "cumulative", "prob"}
    with pytest.raises(ValueError, match=r"adapt: expected one of \['ema', 'cumulative', 'prob', None\]"):
        adapt.make("adam", 0.65)


def test_initial_step_size_is_found_on_the_prior():
    """Deterministic, larger for fewer dimensions, and ε at the target acceptance on the prior."""
    from rdfast.sampling.priors import GaussianMixture, StandardNormal

    eps = {K: adapt.initial_step_size(StandardNormal(K), K, 10, 0.65) for K in (2, 100)}
    assert eps[100] == adapt.initial_step_size(StandardNormal(100), 100, 10, 0.65)
    assert 0.1 < eps[100] < eps[2] < 3.0
    wide = GaussianMixture([1.0], [[0.0, 0.0]], [5.0])  # the same shape, 5× wider: 5× the step
    assert abs(adapt.initial_step_size(wide, 2, 10, 0.65) / eps[2] - 5.0) < 0.5
