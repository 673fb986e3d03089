"""AIS on linear decoders against the closed form (DESIGN §7), with bounds from the Monte Carlo error.

For each recorded β and item n, δ_n = estimate_n − exact_n. Over N items the mean of δ has
standard error SE = sd(δ)/√N (the spread includes each item's own Monte Carlo error).
log Ẑ is a stochastic lower bound, so mean δ_logZ ≤ 3 SE; with enough steps the bias is
below the noise, so |mean δ| ≤ 4 SE for log Z, D̂ and R̂; and the bias of a short run is
larger than that of a long one. Seeds are fixed, so the tests are deterministic.
"""
import pytest

import rdfast
from rdfast.testing import linear_problem

N_ITEMS, N_CHAINS, LEAPFROG = 16, 32, 5

CONFIGS = {
    # name: (distortion, beta_max, kwargs)
    "loglik_gaussian": ("gaussian_nll", 1.0, {"logvar": -1.0}),
    "rd_gaussian": ("gaussian_nll", 20.0, {"logvar": -1.0}),
    "rd_squared_error": ("squared_error", 5.0, {}),
}


def run(name, steps, seed=0):
    distortion, beta_max, kw = CONFIGS[name]
    pr = linear_problem(2, 6, N_ITEMS, logvar=-1.0, seed=1)
    res = rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(steps, beta_max), distortion=distortion,
                     n_chains=N_CHAINS, leapfrog_steps=LEAPFROG, record=4, seed=seed, backend="torch", **kw)
    exact = rdfast.analytic.linear_gaussian(pr.W, pr.b, pr.x, res.beta, distortion=distortion, logvar=-1.0)
    return res, exact


def mean_and_se(est, exact):
    delta = est - exact  # [R, N]
    return delta.mean(1), delta.std(1) / delta.shape[1] ** 0.5


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_closed_form_at_every_recorded_beta(name):
    res, exact = run(name, 400)
    assert res.beta[-1] == CONFIGS[name][1]
    assert int(res.divergences.sum()) == 0
    m, se = mean_and_se(res.log_z, exact.log_z)
    assert (m <= 3 * se).all(), f"log Z above the exact value beyond noise: {m} (SE {se})"
    assert (m.abs() <= 4 * se).all(), f"log Z bias: {m} (SE {se})"
    for field in ("distortion", "rate"):
        m, se = mean_and_se(getattr(res, field), getattr(exact, field))
        assert (m.abs() <= 4 * se).all(), f"{field}: {m} (SE {se})"
    # not vacuous: the standard errors are small compared with the quantities compared
    assert (se < 0.05 * exact.log_z.abs().mean(1)).all()


def test_log_likelihood_at_beta_one():
    res, exact = run("loglik_gaussian", 400)
    m, se = mean_and_se(res.log_z[-1:], exact.log_z[-1:])
    assert res.beta[-1] == 1.0
    assert abs(m.item()) <= 4 * se.item() and se.item() < 0.05


def test_error_shrinks_with_steps():
    """Sign test over items: under "no improvement" P(at least 14 of 16 improve) = 137/65536."""
    short, exact_s = run("rd_gaussian", 25)
    long, exact_l = run("rd_gaussian", 400)
    err_short = (short.log_z[-1] - exact_s.log_z[-1]).abs()
    err_long = (long.log_z[-1] - exact_l.log_z[-1]).abs()
    assert int((err_long < err_short).sum()) >= 14
    assert err_long.mean() < err_short.mean() / 4


def test_tuned_two_rounds_match_the_closed_form():
    """rd_curve's defaults (a tuned dense metric, jitter, the 'prob' rule, the tuned schedule)
    give round-2 estimates within the Monte Carlo error of the closed form at every recorded β."""
    pr = linear_problem(2, 6, N_ITEMS, logvar=-1.0, seed=1)
    res = rdfast.rd_curve(pr.decoder, pr.x, 20.0, 200, distortion="gaussian_nll", logvar=-1.0, n_chains=N_CHAINS,
                          leapfrog_steps=LEAPFROG, record=4, seed=0, backend="torch")
    assert res.config["metric"] == "dense" and res.config["jitter"] == 0.5 and res.config["replayed_tuning"]
    exact = rdfast.analytic.linear_gaussian(pr.W, pr.b, pr.x, res.beta, distortion="gaussian_nll", logvar=-1.0)
    m, se = mean_and_se(res.log_z, exact.log_z)
    assert (m <= 3 * se).all() and (m.abs() <= 4 * se).all(), f"log Z: {m} (SE {se})"
    for field in ("distortion", "rate"):
        m, se = mean_and_se(getattr(res, field), getattr(exact, field))
        assert (m.abs() <= 4 * se).all(), f"{field}: {m} (SE {se})"
    assert (se < 0.05 * exact.log_z.abs().mean(1)).all()


def test_round_two_is_unbiased_for_z():
    """E[Ẑ] = Z given the frozen tuning: over 400 items of a small problem the mean of Ẑ/Z is 1
    within 4 standard errors (and the standard error is small: the test is not vacuous)."""
    pr = linear_problem(2, 6, 400, logvar=-1.0, seed=3)
    res = rdfast.rd_curve(pr.decoder, pr.x, 2.0, 20, distortion="gaussian_nll", logvar=-1.0, n_chains=2,
                          leapfrog_steps=3, record=1, seed=1, backend="cpu")
    exact = rdfast.analytic.linear_gaussian(pr.W, pr.b, pr.x, [2.0], distortion="gaussian_nll", logvar=-1.0)
    ratio = (res.log_z[-1] - exact.log_z[-1]).exp()  # [N] Ẑ/Z
    se = ratio.std() / ratio.numel() ** 0.5
    assert abs(ratio.mean().item() - 1) <= 4 * se.item() and se < 0.1, (ratio.mean(), se)
    log_bias = (res.log_z[-1] - exact.log_z[-1]).mean()
    assert log_bias < -2 * se  # log Ẑ itself is biased low: the test sees the difference
