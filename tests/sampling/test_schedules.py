import math

import pytest
import torch

from rdfast.sampling import schedules


@pytest.mark.parametrize("make", [lambda: schedules.linear(10, 3.0), lambda: schedules.geometric(10, 1e-3, 3.0),
                                  lambda: schedules.sigmoid(10, 3.0), lambda: schedules.sigmoid(1, 3.0)])
def test_shape_endpoints_monotone(make):
    s = make()
    assert s.dtype == torch.float64
    assert s[0] == 0 and s[-1] == 3.0
    assert (s[1:] >= s[:-1]).all()
    assert schedules.validate(s) is not None


def test_sigmoid_matches_formula():
    s = schedules.sigmoid(4, 2.0, radius=4)
    sig = [1 / (1 + math.exp(-t)) for t in (-4, -2, 0, 2, 4)]
    expect = [2.0 * (v - sig[0]) / (sig[-1] - sig[0]) for v in sig]
    assert torch.allclose(s, torch.tensor(expect, dtype=torch.float64), rtol=0, atol=1e-15)


def test_geometric_ratio():
    s = schedules.geometric(4, 1e-2, 1.0)
    assert torch.allclose(s[2:] / s[1:-1], torch.full((3,), 10 ** (2 / 3), dtype=torch.float64))


@pytest.mark.parametrize("bad, match", [
    ([0.0, float("nan"), 1.0], "NaN"), ([0.0, 2.0, 1.0], "nondecreasing"), ([0.5, 1.0], "start at 0"),
    ([0.0], "at least 2"), ([[0.0, 1.0]], "1-D"), ([0.0, float("inf")], "NaN or inf"), ("abc", "schedule"),
])
def test_validate_rejects(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        schedules.validate(bad)


@pytest.mark.parametrize("call", [lambda: schedules.linear(0, 1.0), lambda: schedules.linear(5, -1.0),
                                  lambda: schedules.geometric(5, 0.0, 1.0), lambda: schedules.sigmoid(5, 1.0, radius=0),
                                  lambda: schedules.linear(2.5, 1.0)])
def test_constructors_reject(call):
    with pytest.raises(ValueError):
        call()
