"""The dense metric as a tuned basis (rdfast.sampling.rotation): HMC on u = Qᵀz with a diagonal
metric is HMC on z with M⁻¹ = Q diag(m) Qᵀ; round 1 tunes Q from the chains' gradients."""
import math

import pytest
import torch

import rdfast
from rdfast import backends
from rdfast.fastpath import make_evaluator
from rdfast.runtime.device_loop import DeviceClock
from rdfast.sampling import rng
from rdfast.sampling.distortions import resolve
from rdfast.sampling.hmc import HMC
from rdfast.sampling.metrics import DiagonalMetric
from rdfast.sampling.paths import PriorPath
from rdfast.sampling.priors import StandardNormal
from rdfast.sampling.rotation import BasisEstimator, Rotation, rotated_diagonal
from rdfast.sampling.tuning import basis_refresh_knots
from rdfast.testing import linear_problem


def random_bases(n, k, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(n, k, k, generator=gen, dtype=torch.float64))[0]  # [N, K, K]


def _with_weight(pr, W):
    """``pr`` with the decoder's weight W [P, K] and data drawn from that model."""
    from rdfast.testing import LinearProblem

    decoder = torch.nn.Linear(W.shape[1], W.shape[0]).double().requires_grad_(False)
    decoder.weight.copy_(W)
    decoder.bias.copy_(pr.b)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(pr.x.shape[0], W.shape[1], generator=gen, dtype=torch.float64)
    x = z @ W.T + pr.b + math.exp(0.5 * pr.logvar) * torch.randn(pr.x.shape, generator=gen, dtype=torch.float64)
    return LinearProblem(decoder, W, pr.b, x, pr.logvar)


def test_rotation_maps_rows_and_gradients():
    N, M, K = 3, 4, 5
    Q = random_bases(N, K)
    rot = Rotation(Q.clone(), M, torch.float64)
    u = torch.randn(N * M, K, dtype=torch.float64)
    z = rot.to_z(u)
    torch.testing.assert_close(z.view(N, M, K), torch.einsum("nij,nmj->nmi", Q, u.view(N, M, K)))
    torch.testing.assert_close(rot.to_u(z), u)
    # the evaluator sees z = Qu and returns Qᵀ ∇_z d
    W = torch.randn(K, K, dtype=torch.float64)

    def evaluate(zz, d, g):
        d.copy_((zz @ W).pow(2).sum(1))
        g.copy_(2 * (zz @ W) @ W.T)
    d, g = torch.empty(N * M, dtype=torch.float64), torch.empty(N * M, K, dtype=torch.float64)
    rot.evaluator(evaluate)(u, d, g)
    dz, gz = torch.empty_like(d), torch.empty_like(g)
    evaluate(z, dz, gz)
    torch.testing.assert_close(d, dz)
    torch.testing.assert_close(g, rot.to_u(gz))
    # a change of basis rewrites the rows: the same z in new coordinates
    new = random_bases(N, K, seed=1)
    change = rot.change_to(new, u)
    torch.testing.assert_close(rot.to_z(u), z)
    torch.testing.assert_close(change, new.transpose(1, 2) @ Q)
    h = torch.rand(N, K, dtype=torch.float64)
    expected = torch.diagonal(change @ torch.diag_embed(h) @ change.transpose(1, 2), dim1=1, dim2=2)
    torch.testing.assert_close(rotated_diagonal(change, h), expected)


def test_rotation_changes_basis_in_place_for_captured_graphs():
    """An evaluator made (and, on a GPU, captured in a CUDA graph) before a change of basis or a
    checkpoint's load computes with the new basis: the float32 copies of Q are rewritten in place."""
    N, M, K = 2, 3, 4
    rot = Rotation(random_bases(N, K), M, torch.float32)
    seen = []
    evaluate = rot.evaluator(lambda z, d, g: (seen.append(z.clone()), g.copy_(z)))
    addresses = (rot._q.data_ptr(), rot._qt.data_ptr())
    u = torch.randn(N * M, K)
    for new_basis in (lambda b: rot.change_to(b), rot.load):
        basis = random_bases(N, K, seed=len(seen) + 5)
        new_basis(basis)
        g = torch.empty_like(u)
        evaluate(u, torch.empty(N * M, dtype=torch.float64), g)
        expected = torch.einsum("nij,nmj->nmi", basis, u.double().view(N, M, K)).reshape(N * M, K)
        torch.testing.assert_close(seen[-1].double(), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g, u, rtol=1e-5, atol=1e-5)
        assert (rot._q.data_ptr(), rot._qt.data_ptr()) == addresses


def test_basis_estimator_finds_the_curvature_axes():
    """For gradients g = H (z − μ) of Gaussian chains, the covariance H Σ H has H's eigenvectors."""
    N, M, K = 2, 64, 4
    Q = random_bases(N, K, seed=3)
    H = Q @ torch.diag_embed(torch.tensor([[0.1, 1.0, 10.0, 100.0]] * N, dtype=torch.float64)) @ Q.transpose(1, 2)
    est = BasisEstimator(N, M, K, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        z = torch.randn(N, M, K, generator=gen, dtype=torch.float64)
        est.observe(torch.einsum("nij,nmj->nmi", H, z).reshape(N * M, K))
    found = est.basis()  # [N, K, K]
    alignment = (found.transpose(1, 2) @ Q).abs()  # a permutation matrix up to noise
    assert (alignment.max(2).values > 0.99).all()
    assert basis_refresh_knots(1000) == set(range(62, 999, 63)) and basis_refresh_knots(100) == {31, 63, 95}
    assert basis_refresh_knots(4) == set() and basis_refresh_knots(4, spacing=1) == {0, 1, 2}


@pytest.mark.parametrize("backend_name", ["torch", "cpu"])
def test_hmc_in_a_rotated_basis_leaves_the_gaussian_target_invariant(backend_name):
    """Chains started at exact samples of a correlated linear-Gaussian posterior stay exact
    samples after HMC with a dense metric Q diag(m) Qᵀ (random Q, poor m): the mean and variance
    of every z coordinate and of their products over 2,000 chains per item within 4.5 standard errors."""
    K, N, M, beta = 3, 2, 2000, 2.0
    pr = _with_weight(linear_problem(K, 8, n_items=N, logvar=-0.5, seed=5),
                      linear_problem(K, 8, n_items=N, logvar=-0.5, seed=5).W @ random_bases(1, K, 7)[0]
                      @ torch.diag(torch.tensor([4.0, 0.5, 0.2], dtype=torch.float64)))
    W, b, x = pr.W, pr.b, pr.x
    a = 2.0 * beta * 0.5 * math.exp(0.5)
    cov = torch.linalg.inv(torch.eye(K, dtype=torch.float64) + a * W.T @ W)  # [K, K]
    mean = a * (x - b) @ W @ cov  # [N, K]
    gen = torch.Generator().manual_seed(11)
    z0 = mean.repeat_interleave(M, 0) + torch.randn(N * M, K, generator=gen, dtype=torch.float64) @ \
        torch.linalg.cholesky(cov).T
    be = backends.get(backend_name, torch.device("cpu"))
    keys = rng.Keys(3, torch.arange(N), M)
    rot = Rotation(random_bases(N, K, seed=2), M, x.dtype)
    evaluate = rot.evaluator(make_evaluator(pr.decoder, x, M, resolve("gaussian_nll", pr.logvar, x), be))
    metric = DiagonalMetric(torch.tensor([[0.05, 1.0, 3.0], [2.0, 0.3, 0.7]], dtype=torch.float64), M)
    kernel = HMC(evaluate, be, metric, 5, PriorPath(StandardNormal(K)), keys)
    state = kernel.init(rot.to_u(z0.contiguous()), 0.2)
    clock = DeviceClock(torch.tensor([0.0] + [beta] * 10, dtype=torch.float64), 0, torch.device("cpu"))
    transition = kernel.transition(state, clock)
    for _ in range(10):
        clock.advance()
        transition.step()
    assert 0.2 < state.n_accept.double().mean() / 10 < 0.99  # the chains moved
    z = rot.to_z(state.z).view(N, M, K) - mean.unsqueeze(1)  # [N, M, K]
    se_mean = torch.sqrt(torch.diagonal(cov) / M)
    assert ((z.mean(1) / se_mean).abs() < 4.5).all()
    second = torch.einsum("nmi,nmj->nij", z, z) / M  # [N, K, K]
    var_of_product = torch.diagonal(cov)[:, None] * torch.diagonal(cov)[None, :] + cov ** 2  # Gaussian 4th moments
    assert (((second - cov) / torch.sqrt(var_of_product / M)).abs() < 4.5).all()


def test_dense_two_rounds_match_the_closed_form_on_a_rotated_problem():
    """rd_curve with metric='dense' on a decoder whose stiff direction lies across the axes:
    round 2's log Ẑ, D̂ and R̂ within the Monte Carlo error of the closed form at every recorded β."""
    pr = _with_weight(linear_problem(3, 8, n_items=16, logvar=-1.0, seed=1),
                      linear_problem(3, 8, n_items=16, logvar=-1.0, seed=1).W @ random_bases(1, 3, 4)[0]
                      @ torch.diag(torch.tensor([6.0, 1.0, 0.2], dtype=torch.float64)))
    res = rdfast.rd_curve(pr.decoder, pr.x, 20.0, 200, distortion="gaussian_nll", logvar=-1.0, n_chains=16,
                          leapfrog_steps=5, record=4, seed=0, backend="cpu", metric="dense")
    assert res.config["metric"] == "dense" and res.tuning.rotation.shape == (16, 3, 3)
    exact = rdfast.analytic.linear_gaussian(pr.W, pr.b, pr.x, res.beta, distortion="gaussian_nll", logvar=-1.0)
    for field in ("log_z", "distortion", "rate"):
        delta = getattr(res, field) - getattr(exact, field)  # [R, N]
        m, se = delta.mean(1), delta.std(1) / 4
        assert (m.abs() <= 4 * se).all(), f"{field}: {m} (SE {se})"
        if field != "distortion":  # (D̂ at the lowest β varies like d under the prior: its SE is large there)
            assert (se < 0.05 * (1 + getattr(exact, field).abs().mean(1))).all(), f"{field}: SE {se}"
    Q = res.tuning.rotation
    torch.testing.assert_close(Q.transpose(1, 2) @ Q, torch.eye(3, dtype=torch.float64).expand(16, 3, 3))


@pytest.mark.parametrize("tuned_round", ["round 1", "round 2"])
def test_dense_runs_batch_bit_identical(tuned_round, tuned_run):
    """With a dense metric (basis refreshed in round 1, replayed in round 2) batches of items give
    the same bits as one pass (a row-independent decoder; resuming: tests/runtime/test_checkpoint.py)."""
    pr = linear_problem(3, 6, 4, logvar=-0.5, seed=4, rowwise=True)
    sched, args = tuned_run(pr, 64, "dense", tuned_round)
    whole = rdfast.ais(pr.decoder, pr.x, sched, **args)
    batched = rdfast.ais(pr.decoder, pr.x, sched, batch_size=3, **args)
    for name in ("log_z", "distortion", "z", "log_w", "acceptance"):
        assert torch.equal(getattr(batched, name), getattr(whole, name)), name
    for name in ("log_eps", "var_d", "curvature", "rotation"):
        assert torch.equal(getattr(batched.tuning, name), getattr(whole.tuning, name)), name


def test_dense_metric_bad_input():
    pr = linear_problem(2, 5, 3, logvar=-0.5, seed=2)
    sched = rdfast.schedules.sigmoid(20, 4.0)
    args = dict(logvar=-0.5, n_chains=3, leapfrog_steps=2, seed=0)
    mixture = rdfast.GaussianMixture([0.5, 0.5], torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), [1.0, 1.0])
    with pytest.raises(ValueError, match="metric: 'dense' rotates"):
        rdfast.ais(pr.decoder, pr.x, sched, metric="dense", prior=mixture, **args)
    diagonal = rdfast.ais(pr.decoder, pr.x, sched, metric="diagonal", **args)
    with pytest.raises(ValueError, match="metric: 'dense' replays a tuned basis"):
        rdfast.ais(pr.decoder, pr.x, sched, metric="dense", tuning=diagonal, **args)
    dense = rdfast.ais(pr.decoder, pr.x, sched, metric="dense", **args).tuning
    skewed = rdfast.Tuning(**{**dense.to_dict(), "rotation": dense.rotation * 2})
    with pytest.raises(ValueError, match="tuning: rotation"):
        rdfast.ais(pr.decoder, pr.x, sched, metric="dense", tuning=skewed, **args)
