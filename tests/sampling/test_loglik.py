"""The log-likelihood: against exact values (closed form, grid quadrature), with an encoder,
Bernoulli BDMC, BDMC on the user's own simulated pairs, standard errors, bad input."""
import math

import pytest
import torch

import rdfast

K, P = 2, 6


def axis_aligned_linear(n_items, seed=0, logvar=-1.0):
    """f(z) = Wz + b with WᵀW diagonal, so the posterior at β = 1 is a diagonal Gaussian; x from the model."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(P, K, generator=gen, dtype=torch.float64))
    W, b = Q * torch.tensor([1.5, 0.4], dtype=torch.float64), 0.1 * torch.randn(P, generator=gen, dtype=torch.float64)
    z = torch.randn(n_items, K, generator=gen, dtype=torch.float64)
    x = z @ W.T + b + math.exp(0.5 * logvar) * torch.randn(n_items, P, generator=gen, dtype=torch.float64)
    decoder = torch.nn.Linear(K, P).double().requires_grad_(False)
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    exact = rdfast.analytic.linear_gaussian(W, b, x, [1.0], logvar=logvar).log_z[-1]  # [N]
    precision = 1.0 + math.exp(-logvar) * (W * W).sum(0)  # [K], diagonal
    mean = math.exp(-logvar) * (x - b) @ W / precision  # [N, K]
    return decoder, x, exact, mean, -torch.log(precision).expand_as(mean)


def test_the_exact_posterior_as_encoder_gives_zero_variance_weights():
    """q = the posterior: every target of the path is q itself and every weight is log p(x)."""
    decoder, x, exact, mean, logvar = axis_aligned_linear(5)
    res = rdfast.ais(decoder, x, rdfast.schedules.linear(7, 1.0), logvar=-1.0, encoder=lambda _: (mean, logvar),
                     n_chains=6, leapfrog_steps=3, record=1, seed=0, backend="cpu")
    torch.testing.assert_close(res.log_w, exact[:, None].expand_as(res.log_w), rtol=0, atol=1e-10)
    assert res.acceptance.min() > 0  # the chains moved, and the weights did not care


def test_a_perturbed_encoder_matches_the_closed_form():
    decoder, x, exact, mean, logvar = axis_aligned_linear(16, seed=1)
    gen = torch.Generator().manual_seed(2)
    noisy = (mean + 0.3 * torch.randn(mean.shape, generator=gen, dtype=torch.float64), logvar + 0.7)
    ll = rdfast.log_likelihood(decoder, x, 30, logvar=-1.0, encoder=lambda _: noisy, n_chains=8, seed=0,
                               backend="cpu")
    delta = ll.per_item - exact
    se = delta.std() / 4
    assert ll.config["encoder"] and abs(delta.mean()) <= 4 * se and se < 0.05, (delta.mean(), se)


def bernoulli_decoder():
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(K, 8), torch.nn.Tanh(), torch.nn.Linear(8, P)).double()
    with torch.no_grad():
        net[2].weight.mul_(3.0)
    return net.requires_grad_(False)


def quadrature_log_likelihood(decoder, x, half_width=7.0, n=401):
    """log ∫ N(z; 0, I) Π_j Bernoulli(x_j; σ(ℓ_j(z))) dz by the trapezoid rule on a grid [N]."""
    grid = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    z = torch.cartesian_prod(grid, grid)  # [n², 2]
    with torch.no_grad():
        logits = decoder(z)  # [n², P]
    log_prior = -0.5 * (z * z).sum(1) - math.log(2 * math.pi)
    log_lik = -(torch.nn.functional.softplus(logits)[None] - x[:, None, :] * logits[None]).sum(-1)  # [N, n²]
    weights = torch.full((n,), 1.0, dtype=torch.float64)
    weights[0] = weights[-1] = 0.5
    log_cell = torch.log(torch.outer(weights, weights).reshape(-1) * (grid[1] - grid[0]) ** 2)
    return torch.logsumexp(log_prior + log_lik + log_cell, dim=1)


def test_bernoulli_log_likelihood_against_quadrature_and_bracketed_by_bdmc():
    decoder = bernoulli_decoder()
    bd = rdfast.bdmc(decoder, [1.0], 24, steps=150, distortion="bernoulli_nll", n_chains=8, seed=4, backend="cpu")
    x = bd.x[0]  # [N, P] binary data simulated from the model
    assert ((x == 0) | (x == 1)).all()
    exact = quadrature_log_likelihood(decoder, x)
    ll = rdfast.log_likelihood(decoder, x, 150, distortion="bernoulli_nll", n_chains=8, seed=5, backend="cpu")
    delta = ll.per_item - exact
    se = delta.std() / math.sqrt(delta.numel())
    assert abs(delta.mean()) <= 4 * se and se < 0.1, (delta.mean(), se)
    for bound, sign in ((bd.lower[0], 1), (bd.upper[0], -1)):
        diff = sign * (bound - exact)  # ≤ 0 up to noise: lower below, upper above
        assert diff.mean() <= 3 * diff.std() / math.sqrt(diff.numel()) + 1e-9


def test_bdmc_on_your_own_pairs_equals_the_built_in_simulation():
    decoder = bernoulli_decoder()
    args = dict(steps=20, distortion="bernoulli_nll", n_chains=4, seed=7, backend="cpu")
    built_in = rdfast.bdmc(decoder, [1.0], 5, **args)
    given = rdfast.bdmc(decoder, [1.0], data=(built_in.x[0], built_in.z[0]), **args)
    assert torch.equal(given.lower, built_in.lower) and torch.equal(given.upper, built_in.upper)
    assert given.config["data"] == "given" and given.config["n_data"] == 5


def test_standard_errors_agree_with_the_spread_over_repeats():
    """Over 12 repeats with fresh items from the model and fresh seeds, the spread of the mean
    log p̂(x) matches the reported standard error (sd of a 12-sample sd: ±21 %; bounds ±4 sd of it)."""
    means, ses = [], []
    for repeat in range(12):
        decoder, x, _, _, _ = axis_aligned_linear(10, seed=100 + repeat)
        ll = rdfast.log_likelihood(decoder, x, 20, logvar=-1.0, n_chains=4, leapfrog_steps=3, seed=repeat,
                                   backend="cpu")
        means.append(ll.mean)
        ses.append(ll.stderr)
    ratio = torch.tensor(means).std().item() / (sum(s * s for s in ses) / len(ses)) ** 0.5
    assert 0.2 < ratio < 1.8, ratio


def test_result_units_summary_and_save(tmp_path):
    decoder, x, _, _, _ = axis_aligned_linear(4)
    ll = rdfast.log_likelihood(decoder, x, 10, logvar=-1.0, n_chains=2, leapfrog_steps=2, seed=0, backend="cpu")
    assert ll.per_dim() == pytest.approx((ll.mean / P, ll.stderr / P))
    assert ll.bits_per_dim()[0] == pytest.approx(-ll.mean / (P * math.log(2)))
    line = ll.summary()
    assert line.startswith(f"log p(x) = {ll.mean:.2f} ± {ll.stderr:.2f} nats (N = 4, 2 chains")
    assert "bits/dim" in ll.summary("bits/dim")
    ll.save(tmp_path / "ll.npz")
    back = rdfast.LogLikelihood.load(tmp_path / "ll.npz")
    assert torch.equal(back.per_item, ll.per_item) and back.n_dims == P and back.config == ll.config


def _bad_cases():
    decoder, x, _, mean, logvar = axis_aligned_linear(4)
    bern = bernoulli_decoder()
    xb = (x > 0).double()
    ll = dict(decoder=decoder, x=x, steps=5, logvar=-1.0)
    return [
        (rdfast.log_likelihood, dict(ll, encoder=lambda _: (mean[:, :1], logvar)), ValueError, "encoder: mean"),
        (rdfast.log_likelihood, dict(ll, encoder=lambda _: (mean, logvar * math.nan)), ValueError, "encoder: logvar"),
        (rdfast.log_likelihood, dict(ll, encoder=lambda _: mean), TypeError, "encoder"),
        (rdfast.log_likelihood, dict(ll, encoder=3), TypeError, "encoder"),
        (rdfast.log_likelihood, dict(ll, distortion="squared_error", logvar=None), ValueError, "distortion"),
        (rdfast.log_likelihood, dict(decoder=bern, x=x, steps=5, distortion="bernoulli_nll"), ValueError, "x:"),
        (rdfast.log_likelihood, dict(ll, steps=None), ValueError, "steps"),
        (rdfast.log_likelihood, dict(ll, steps=None, schedule=rdfast.schedules.linear(5, 2.0)), ValueError, "schedule"),
        (rdfast.bdmc, dict(decoder=bern, betas=[2.0], n_data=3, steps=5, distortion="bernoulli_nll"), ValueError,
         "betas: bernoulli_nll"),
        (rdfast.bdmc, dict(decoder=bern, betas=[1.0], n_data=3, steps=5, distortion="bernoulli_nll",
                           data=(xb, torch.zeros(4, K))), ValueError, "n_data: taken from data"),
        (rdfast.bdmc, dict(decoder=bern, betas=[1.0], steps=5, distortion="bernoulli_nll",
                           data=(xb, torch.zeros(3, K, dtype=torch.float64))), ValueError, "data: x has 4 items"),
        (rdfast.bdmc, dict(decoder=bern, betas=[1.0], steps=5, distortion="bernoulli_nll",
                           data=(x, torch.zeros(4, K, dtype=torch.float64))), ValueError, "data: x must be binary"),
        (rdfast.bdmc, dict(decoder=bern, betas=[1.0, 2.0], steps=5, distortion="squared_error",
                           data=(x, torch.zeros(4, K, dtype=torch.float64))), ValueError, "betas: data="),
        (rdfast.bdmc, dict(decoder=bern, betas=[1.0], steps=5, distortion="squared_error",
                           data=(x, torch.zeros(4, K + 1, dtype=torch.float64))), ValueError, "data: z must be"),
        (rdfast.ais, dict(decoder=decoder, x=x, schedule=rdfast.schedules.linear(5, 2.0), logvar=-1.0,
                          encoder=lambda _: (mean, logvar)), ValueError, "schedule: the encoder's path"),
        (rdfast.rd_curve, dict(decoder=decoder, x=x, beta_max=2.0, steps=5, logvar=-1.0,
                               encoder=lambda _: (mean, logvar)), TypeError, "no encoder"),
        (rdfast.rd_curve, dict(decoder=decoder, x=x, beta_max=2.0, steps=5, logvar=-1.0, through=[3.0]),
         ValueError, "through"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_input_names_the_argument(case):
    fn, kwargs, exc, match = _bad_cases()[case]
    with pytest.raises(exc, match=match):
        fn(**kwargs)
