"""rdfast.ops driven from NumPy arrays alone: results against NumPy formulas, and clear
errors for bad arrays (wrong dtype or shape, non-contiguous or read-only outputs)."""
import math

import numpy as np
import pytest

from rdfast import ops

N, M, K, P = 3, 4, 5, 7
B = N * M


def f64(*shape, rng):
    return rng.standard_normal(shape)


def test_distortion_gaussian_per_pixel_logvar(np_rng):
    x, xhat = f64(N, P, rng=np_rng).astype(np.float32), f64(B, P, rng=np_rng).astype(np.float32)
    v = np_rng.uniform(-1, 1, P).astype(np.float32)
    d, grad = np.zeros(B), np.zeros((B, P), np.float32)
    ops.distortion("gaussian_nll", x, xhat, v, d, grad, None, n_chains=M)
    xr = np.repeat(x, M, axis=0).astype(np.float64)
    diff = xhat - xr
    expected = 0.5 * (diff**2 * np.exp(-v) + v + math.log(2 * math.pi)).sum(1)
    np.testing.assert_allclose(d, expected, rtol=1e-5)
    np.testing.assert_allclose(grad, diff * np.exp(-v), rtol=1e-5, atol=1e-6)


def test_distortion_bernoulli(np_rng):
    x = np_rng.integers(0, 2, (N, P)).astype(np.float64)
    logits = f64(B, P, rng=np_rng) * 3
    d, grad = np.zeros(B), np.zeros((B, P))
    ops.distortion("bernoulli_nll", x, logits, None, d, grad, None, n_chains=M)
    xr = np.repeat(x, M, axis=0)
    np.testing.assert_allclose(d, (np.logaddexp(0, logits) - xr * logits).sum(1), rtol=1e-12)
    np.testing.assert_allclose(grad, 1 / (1 + np.exp(-logits)) - xr, rtol=1e-12, atol=1e-15)


def test_leapfrog_trajectory(np_rng):
    """begin, one step, end: the leapfrog integrator for U = ½‖z‖² + β gᵀz (g held fixed)."""
    z0, g, p0 = f64(B, K, rng=np_rng), f64(B, K, rng=np_rng), f64(B, K, rng=np_rng)
    d0, eps, beta = np_rng.uniform(0, 5, B), np_rng.uniform(0.01, 0.2, B), 2.0
    p, z, logw, h0 = p0.copy(), np.zeros((B, K)), np.zeros(B), np.zeros(B)
    ops.leapfrog_begin(z0, g, d0, p, z, logw, h0, beta, 0.5, eps)
    e = eps[:, None]
    p_ref = p0 - 0.5 * e * (z0 + beta * g)
    z_ref = z0 + e * p_ref
    np.testing.assert_allclose(logw, -0.5 * d0, rtol=1e-15)
    np.testing.assert_allclose(h0, 0.5 * (z0**2).sum(1) + beta * d0 + 0.5 * (p0**2).sum(1), rtol=1e-13)
    np.testing.assert_allclose(p, p_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(z, z_ref, rtol=1e-13, atol=1e-15)
    ops.leapfrog_step(z, g, p, beta, eps)
    p_ref = p_ref - e * (z_ref + beta * g)
    z_ref = z_ref + e * p_ref
    np.testing.assert_allclose(z, z_ref, rtol=1e-13, atol=1e-15)
    ops.leapfrog_end(z, g, p, beta, eps)
    np.testing.assert_allclose(p, p_ref - 0.5 * e * (z_ref + beta * g), rtol=1e-13, atol=1e-15)


def test_scalars_may_be_zero_d_arrays(np_rng):
    """β, Δβ as 0-d arrays (read by the kernel, as a device-resident loop passes them): same result."""
    z0, g, p0 = f64(B, K, rng=np_rng), f64(B, K, rng=np_rng), f64(B, K, rng=np_rng)
    d0, eps = np_rng.uniform(0, 5, B), np_rng.uniform(0.01, 0.2, B)
    outs = []
    for beta, dbeta in ((2.5, 0.25), (np.array(2.5), np.array(0.25))):
        p, z, logw, h0 = p0.copy(), np.zeros((B, K)), np.zeros(B), np.zeros(B)
        ops.leapfrog_begin(z0, g, d0, p, z, logw, h0, beta, dbeta, eps)
        ops.leapfrog_step(z, g, p, beta, eps)
        outs.append((p, z, logw, h0))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    accepted, prob, n_acc, n_div = np.zeros(B), np.zeros(B), np.zeros(B, np.int64), np.zeros(B, np.int64)
    ops.metropolis(z0.copy(), g.copy(), d0.copy(), z, g, d0, p, h0, np.full(B, 0.5), np.array(2.5), accepted, prob,
                   n_acc, n_div)
    np.testing.assert_array_equal(accepted, n_acc)
    with pytest.raises(TypeError, match="beta"):
        ops.leapfrog_step(z, g, p, np.array(2.5, dtype=np.float32), eps)


def test_metropolis_selects_rows_and_counts(np_rng):
    z0, g0, z, g, p = (f64(B, K, rng=np_rng).astype(np.float32) for _ in range(5))
    d0, d = np_rng.uniform(0, 3, B), np_rng.uniform(0, 3, B)
    d[1] = np.nan  # a divergent proposal
    beta = 1.5
    h1 = 0.5 * (z.astype(np.float64) ** 2).sum(1) + beta * d + 0.5 * (p.astype(np.float64) ** 2).sum(1)
    u = np_rng.uniform(0.01, 1, B)
    accept = np.arange(B) % 2 == 0
    h0 = np.where(np.isfinite(h1), h1 + np.log(u) + np.where(accept, 0.5, -0.5), 0.0)
    accepted, prob = np.full(B, 7.0), np.full(B, 7.0)
    n_accept, n_diverge = np.zeros(B, np.int64), np.zeros(B, np.int64)
    z0_before = z0.copy()
    ops.metropolis(z0, g0, d0, z, g, d, p, h0, u, beta, accepted, prob, n_accept, n_diverge)
    np.testing.assert_array_equal(n_accept, accept)
    np.testing.assert_array_equal(accepted, accept)
    np.testing.assert_array_equal(n_diverge, np.arange(B) == 1)
    np.testing.assert_array_equal(z0, np.where(accept[:, None], z, z0_before))
    with np.errstate(invalid="ignore"):
        expected = np.where(np.isfinite(h1), np.minimum(1.0, np.exp(h0 - h1)), 0.0)
    np.testing.assert_allclose(prob, expected, rtol=1e-14)


def test_record(np_rng):
    logw, d = np_rng.normal(0, 3, B), np_rng.uniform(0, 10, B)
    logw[0], d[0] = -np.inf, np.inf
    log_z, dist, ess = np.zeros(N), np.zeros(N), np.zeros(N)
    ops.record(logw, d, M, log_z, dist, ess)
    lw = logw.reshape(N, M)
    lse = np.logaddexp.reduce(lw, axis=1)
    w = np.exp(lw - lse[:, None])
    np.testing.assert_allclose(log_z, lse - math.log(M), rtol=1e-13)
    with np.errstate(invalid="ignore"):  # 0 · inf at the chain of zero weight
        np.testing.assert_allclose(dist, np.where(w > 0, w * d.reshape(N, M), 0).sum(1), rtol=1e-13)
    np.testing.assert_allclose(ess, 1 / (w**2).sum(1), rtol=1e-13)


class ArrayInterfaceOnly:
    """An array known only by the NumPy array interface (as other libraries export them)."""

    def __init__(self, a):
        self._a = a
        self.__array_interface__ = a.__array_interface__


class DLPackOnly:
    """An array known only by the DLPack protocol."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


@pytest.mark.parametrize("wrap", [ArrayInterfaceOnly, DLPackOnly])
def test_foreign_arrays_are_used_in_place(wrap, np_rng):
    z, g, p = f64(B, K, rng=np_rng), f64(B, K, rng=np_rng), f64(B, K, rng=np_rng)
    eps = np.full(B, 0.1)
    p_ref = p - 0.5 * 0.1 * (z + 3.0 * g)
    ops.leapfrog_end(wrap(z), wrap(g), wrap(p), 3.0, wrap(eps))
    np.testing.assert_allclose(p, p_ref, rtol=1e-14)


def test_read_only_inputs_are_fine(np_rng):
    logw, d = np_rng.normal(0, 1, B), np_rng.uniform(0, 1, B)
    logw.flags.writeable = d.flags.writeable = False
    out = np.zeros(N)
    ops.record(logw, d, M, out, np.zeros(N), np.zeros(N))
    assert np.isfinite(out).all()


def kick_args(rng):
    return dict(z=f64(B, K, rng=rng), g=f64(B, K, rng=rng), p=f64(B, K, rng=rng), beta=1.0, eps=np.full(B, 0.1))


def test_bad_dtype_is_named(np_rng):
    with pytest.raises(TypeError, match="leapfrog_step: eps must be torch.float64, got torch.float32"):
        ops.leapfrog_step(**dict(kick_args(np_rng), eps=np.full(B, 0.1, np.float32)))
    with pytest.raises(TypeError, match="leapfrog_step: g must be torch.float64 like the other data arrays"):
        ops.leapfrog_step(**dict(kick_args(np_rng), g=np.zeros((B, K), np.float32)))
    with pytest.raises(TypeError, match="leapfrog_step: z must be float32 or float64, got torch.int64"):
        ops.leapfrog_step(**dict(kick_args(np_rng), z=np.zeros((B, K), np.int64)))


def test_bad_shape_is_named(np_rng):
    with pytest.raises(ValueError, match=r"leapfrog_step: p must have shape \[B, K\] = \[12, 5\], got \[12, 4\]"):
        ops.leapfrog_step(**dict(kick_args(np_rng), p=np.zeros((B, 4))))
    with pytest.raises(ValueError, match=r"leapfrog_step: eps must have shape \[B\], got \[12, 1\]"):
        ops.leapfrog_step(**dict(kick_args(np_rng), eps=np.zeros((B, 1))))
    with pytest.raises(ValueError, match=r"distortion: xhat must have shape \[B, P\] = \[12, 7\]"):
        ops.distortion("squared_error", np.zeros((N, P)), np.zeros((B + 1, P)), None, np.zeros(B + 1),
                       np.zeros((B + 1, P)), None, n_chains=M)
    with pytest.raises(ValueError, match=r"distortion: logvar must have shape \[1\], \[P\] = \[7\]"):
        ops.distortion("gaussian_nll", np.zeros((N, P)), np.zeros((B, P)), np.zeros(P + 1), np.zeros(B),
                       np.zeros((B, P)), None, n_chains=M)


def test_non_contiguous_output_is_refused(np_rng):
    wide = np.zeros((B, 2 * K))
    with pytest.raises(ValueError, match="leapfrog_step: p must be contiguous"):
        ops.leapfrog_step(**dict(kick_args(np_rng), p=wide[:, ::2]))
    with pytest.raises(ValueError, match="leapfrog_step: z cannot be used without a copy"):
        ops.leapfrog_step(**dict(kick_args(np_rng), z=np.zeros((B, K))[::-1]))


def test_read_only_output_is_refused(np_rng):
    p = np.zeros((B, K))
    p.flags.writeable = False
    with pytest.raises(ValueError, match="leapfrog_step: p is an output and must be writable"):
        ops.leapfrog_step(**dict(kick_args(np_rng), p=p))
    with pytest.raises(ValueError, match="leapfrog_step: p is an output and must be writable"):
        ops.leapfrog_step(**dict(kick_args(np_rng), p=ArrayInterfaceOnly(p)))


def test_other_bad_arguments(np_rng):
    with pytest.raises(TypeError, match="leapfrog_step: z must be a torch tensor, a NumPy array"):
        ops.leapfrog_step(**dict(kick_args(np_rng), z=[[0.0] * K] * B))
    with pytest.raises(TypeError, match="leapfrog_step: g is required"):
        ops.leapfrog_step(**dict(kick_args(np_rng), g=None))
    with pytest.raises(ValueError, match="record: n_chains must be a positive int"):
        ops.record(np.zeros(B), np.zeros(B), 0, np.zeros(N), np.zeros(N), np.zeros(N))
    with pytest.raises(TypeError, match="metropolis: accepted must be torch.float64, got torch.int64"):
        ops.metropolis(*[np.zeros((B, K))] * 2, np.zeros(B), *[np.zeros((B, K))] * 2, np.zeros(B),
                       np.zeros((B, K)), np.zeros(B), np.ones(B), 1.0, np.zeros(B, np.int64), np.zeros(B),
                       np.zeros(B, np.int64), np.zeros(B, np.int64))


def test_diagonal_metric(np_rng):
    """inv_mass [N, K]: K(p) = ½ Σ m p² in h0 and H1, drift z += ε m ⊙ p; bad inv_mass is named."""
    z0, g, p0 = f64(B, K, rng=np_rng), f64(B, K, rng=np_rng), f64(B, K, rng=np_rng)
    d0, eps, beta = np_rng.uniform(0, 5, B), np_rng.uniform(0.01, 0.2, B), 2.0
    m = np_rng.uniform(0.1, 3.0, (N, K))
    rows = np.repeat(m, M, axis=0)  # [B, K]
    p, z, logw, h0 = p0.copy(), np.zeros((B, K)), np.zeros(B), np.zeros(B)
    ops.leapfrog_begin(z0, g, d0, p, z, logw, h0, beta, 0.5, eps, inv_mass=m)
    e = eps[:, None]
    p_ref = p0 - 0.5 * e * (z0 + beta * g)
    np.testing.assert_allclose(h0, 0.5 * (z0**2).sum(1) + beta * d0 + 0.5 * (rows * p0**2).sum(1), rtol=1e-13)
    np.testing.assert_allclose(z, z0 + e * rows * p_ref, rtol=1e-13, atol=1e-15)
    ops.leapfrog_step(z, g, p, beta, eps, inv_mass=m)
    np.testing.assert_allclose(z, z0 + e * rows * p_ref + e * rows * (p_ref - e * (z0 + e * rows * p_ref + beta * g)),
                               rtol=1e-12, atol=1e-14)
    for bad, message in ((-m, "positive and finite"), (m[:, :2], r"metric.inv_mass must be contiguous with shape"),
                         (np.ones((5, K)), r"N dividing the 12 rows"), (m.astype(np.float32), "metric.inv_mass must be a torch.float64")):
        with pytest.raises((ValueError, TypeError), match=message):
            ops.leapfrog_step(z, g, p, beta, eps, inv_mass=bad)
