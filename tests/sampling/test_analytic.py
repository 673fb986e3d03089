"""The closed-form oracle against brute-force quadrature on 1-D and 2-D latents."""
import math

import pytest
import torch

from rdfast.sampling import analytic


def quadrature(W, b, x, beta, distortion, logvar):
    """log Z, rate, distortion on a dense grid over z (K = 1 or 2)."""
    K = W.shape[1]
    g = torch.linspace(-9, 9, 1201 if K == 1 else 601, dtype=torch.float64)
    h = (g[1] - g[0]).item()
    zs = g.unsqueeze(1) if K == 1 else torch.cartesian_prod(g, g)  # [G, K]
    f = zs @ W.T + b  # [G, P]
    sq = (x - f) ** 2
    if distortion == "gaussian_nll":
        d = 0.5 * (sq * math.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(1)
    else:
        d = sq.sum(1)
    logp = -0.5 * (zs ** 2).sum(1) - 0.5 * K * math.log(2 * math.pi)
    logf = logp - beta * d
    log_z = torch.logsumexp(logf, 0) + K * math.log(h)
    q = torch.exp(logf - torch.logsumexp(logf, 0))
    dist = (q * d).sum()
    return log_z.item(), (-log_z - beta * dist).item(), dist.item()


@pytest.mark.parametrize("K", [1, 2])
@pytest.mark.parametrize("distortion", ["gaussian_nll", "squared_error"])
def test_matches_quadrature(K, distortion):
    gen = torch.Generator().manual_seed(K)
    P = 3
    W = torch.randn(P, K, generator=gen, dtype=torch.float64)
    b = torch.randn(P, generator=gen, dtype=torch.float64)
    x = torch.randn(2, P, generator=gen, dtype=torch.float64)
    betas = [0.0, 0.3, 1.0, 2.5]
    ex = analytic.linear_gaussian(W, b, x, betas, distortion=distortion, logvar=0.4)
    for i, beta in enumerate(betas):
        for n in range(2):
            lz, rate, dist = quadrature(W, b, x[n], beta, distortion, 0.4)
            assert ex.log_z[i, n].item() == pytest.approx(lz, abs=1e-6)
            assert ex.rate[i, n].item() == pytest.approx(rate, abs=1e-6)
            assert ex.distortion[i, n].item() == pytest.approx(dist, abs=1e-6)


def test_per_pixel_logvar_equals_whitened_scalar():
    gen = torch.Generator().manual_seed(3)
    W, b, x = (torch.randn(4, 2, generator=gen, dtype=torch.float64), torch.zeros(4, dtype=torch.float64),
               torch.randn(3, 4, generator=gen, dtype=torch.float64))
    v = torch.tensor([0.1, -0.5, 0.3, 0.0], dtype=torch.float64)
    a = analytic.linear_gaussian(W, b, x, [0.7], logvar=v)
    s = torch.exp(-0.5 * v)
    c = analytic.linear_gaussian(s[:, None] * W, b, s * x, [0.7], logvar=0.0)
    shift = 0.5 * v.sum()  # d differs by the log-variance constant only
    assert torch.allclose(a.rate, c.rate) and torch.allclose(a.distortion, c.distortion + shift)


def test_bad_input():
    with pytest.raises(ValueError, match="distortion"):
        analytic.linear_gaussian(torch.ones(3, 2), torch.zeros(3), torch.ones(1, 3), [1.0], distortion="bernoulli_nll")
    with pytest.raises(ValueError, match="b:"):
        analytic.linear_gaussian(torch.ones(3, 2), torch.zeros(4), torch.ones(1, 3), [1.0])
    with pytest.raises(ValueError, match="betas"):
        analytic.linear_gaussian(torch.ones(3, 2), torch.zeros(3), torch.ones(1, 3), [-1.0])
