"""BDMC on linear decoders, where log Z_β(x) of every simulated item is known exactly."""
import functools
import math

import pytest
import torch

import rdfast
from rdfast.sampling.bdmc import BDMCResult, bdmc, path_to
from rdfast.testing import linear_problem

N_DATA = 16


def exact_log_z(pr, res, distortion):
    return torch.stack([rdfast.analytic.linear_gaussian(pr.W, pr.b, res.x[j], [b], distortion=distortion,
                                                        logvar=pr.logvar).log_z[0]
                        for j, b in enumerate(res.beta.tolist())])  # [J, N]


@functools.lru_cache(maxsize=None)
def run(steps, distortion="gaussian_nll", betas=(0.5, 20.0)):
    pr = linear_problem(2, 6, 1, logvar=-1.0, seed=1)
    kw = {"logvar": pr.logvar} if distortion == "gaussian_nll" else {}
    res = bdmc(pr.decoder, list(betas), N_DATA, steps=steps, distortion=distortion, n_chains=8, leapfrog_steps=5,
               seed=0, backend="torch", **kw)
    return pr, res, exact_log_z(pr, res, distortion)


@pytest.mark.parametrize("distortion", ["gaussian_nll", "squared_error"])
def test_bounds_bracket_the_exact_value(distortion):
    """Averaged over items: lower ≤ exact ≤ upper within 3 standard errors of the mean."""
    pr, res, exact = run(200, distortion)
    lo, up = res.lower - exact, res.upper - exact  # [J, N]
    se_lo, se_up = lo.std(1) / math.sqrt(N_DATA), up.std(1) / math.sqrt(N_DATA)
    assert (lo.mean(1) <= 3 * se_lo).all(), (lo.mean(1), se_lo)
    assert (up.mean(1) >= -3 * se_up).all(), (up.mean(1), se_up)
    assert (res.gap >= -3 * (se_lo ** 2 + se_up ** 2).sqrt()).all()
    assert (res.gap < 1.0).all()  # and the bracket is informative after 200 steps
    assert res.x.shape == (2, N_DATA, 6) and res.z.shape == (2, N_DATA, 2)


@pytest.mark.filterwarnings("ignore:ais. acceptance ended at 0")  # 5 steps: too few to adapt at β = 20
def test_gap_shrinks_with_steps():
    """A run 40 times longer has gaps at least 4 times smaller (the tuned defaults close the gap at
    β = 0.5 to within its noise already in 20 steps, so the short run has 5)."""
    _, short, _ = run(5)
    _, long, _ = run(200)
    assert (long.gap < short.gap / 4).all(), (short.gap, long.gap)


def test_reverse_weights_by_hand():
    """Reverse path [β*, β1, 0]: log w = (β* − β1)·d(z*) + β1·d(z_1), identical for all chains at step 1."""
    pr = linear_problem(2, 6, 1, logvar=-1.0, seed=1)
    from rdfast.sampling.annealing import anneal
    from rdfast.sampling.bdmc import simulate
    from rdfast.sampling.config import HMCConfig, Problem, RunConfig
    prior = rdfast.StandardNormal(2)
    z_star, x = simulate(pr.decoder, prior, 3, 2.0, "gaussian_nll", pr.logvar, torch.float64, torch.device("cpu"), 5, 0)
    path = torch.tensor([2.0, 0.7, 0.0], dtype=torch.float64)

    def d_of(z, xi):
        return 0.5 * (((xi - pr.decoder(z)) ** 2) * math.exp(-pr.logvar) + pr.logvar + math.log(2 * math.pi)).sum(-1)

    problem = Problem.of(pr.decoder, x, logvar=pr.logvar)
    hmc = HMCConfig.of(n_chains=4, leapfrog_steps=3, adapt=None, step_size=0.3)
    two = anneal(problem, path, hmc, RunConfig.of(record=[1, 2], seed=9, backend="torch"), initial=z_star)
    one = anneal(problem, path[:2].contiguous(), hmc, RunConfig.of(record=[1], seed=9, backend="torch"),
                 initial=z_star)  # same keyed randomness
    with torch.no_grad():
        w1 = (2.0 - 0.7) * d_of(z_star, x)  # [N]
        torch.testing.assert_close(two.log_z[0], w1, rtol=1e-12, atol=1e-12)
        w2 = w1[:, None] + 0.7 * d_of(one.z, x[:, None])  # [N, M]
        torch.testing.assert_close(two.log_w, w2, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(two.log_z[1], torch.logsumexp(w2, 1) - math.log(4), rtol=1e-12, atol=1e-12)


def test_schedule_prefix_path():
    full = rdfast.schedules.sigmoid(100, 10.0)
    p = path_to(full, 1.0, None, 4.0)
    assert p[0] == 0 and p[-1] == 1.0 and (p[1:] >= p[:-1]).all() and p.numel() < 101
    with pytest.raises(ValueError, match="below beta"):
        path_to(full, 11.0, None, 4.0)


def test_save_load_and_plot(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    pr = linear_problem(2, 6, 4, logvar=-1.0, seed=1)
    res = bdmc(pr.decoder, [1.0], 4, steps=5, logvar=pr.logvar, n_chains=2, leapfrog_steps=2, seed=0, backend="torch")
    res.save(tmp_path / "b.npz")
    back = BDMCResult.load(tmp_path / "b.npz")
    assert torch.equal(back.lower, res.lower) and back.config == res.config and "gap" in res.summary()
    curve = rdfast.ais(pr.decoder, pr.x, rdfast.schedules.sigmoid(10, 2.0), logvar=pr.logvar, n_chains=2,
                       leapfrog_steps=2, seed=0, backend="torch")
    res.plot(curve=curve).figure.savefig(tmp_path / "b.png")
    res.plot().figure.savefig(tmp_path / "c.png")


@pytest.mark.parametrize("kwargs, match", [
    (dict(betas=[2.0], n_data=2, steps=5, distortion="bernoulli_nll"), "beta = 1"),
    (dict(betas=[0.0], n_data=2, steps=5, logvar=-1.0), "betas"),
    (dict(betas=[1.0], n_data=0, steps=5, logvar=-1.0), "n_data"),
    (dict(betas=[1.0], n_data=2, logvar=-1.0), "steps"),
    (dict(betas=[1.0], n_data=2, steps=5), "logvar"),
])
def test_bad_input(kwargs, match):
    pr = linear_problem(2, 6, 1, seed=1)
    with pytest.raises((ValueError, TypeError), match=match):
        bdmc(pr.decoder, backend="torch", **kwargs)
