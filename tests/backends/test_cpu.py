"""The compiled backends (rdfast._C via rdfast.backends.cpu, and .cuda where a GPU is) against
the torch reference, op by op.

Each op runs three times on the same inputs, rounded to dtype T: the backend in T, the
reference in T (ref32 when T is float32) and the reference on those inputs cast to float64
(ref64), both references on the CPU. The cuda backend joins where it can run (a GPU with a
driver, torch with CUDA); elsewhere one test is skipped and says why. The cpu backend always
runs. Tolerances, the flash-attention way: in float32 every array must satisfy
|cpu − ref64| ≤ 2·|ref32 − ref64| + ATOL32·(1 + |ref64|); in float64
|cpu − ref64| ≤ ATOL64·(1 + |ref64|). Non-finite values must sit at the same places with the
same values; integer outputs (counters) and the accept decisions match exactly (uniforms are
drawn away from the accept threshold).
"""
import importlib
import math

import pytest
import torch

from rdfast.backends import cpu, cuda, reference as ref
from rdfast.backends.protocol import ADAPT_CUMULATIVE, ADAPT_EMA, ADAPT_NONE

ATOL32 = 1e-6
ATOL64 = 1e-12
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]
# (N items, M chains, K latent, P data): odd tails, M = 1, N = 1, K = 1, P = 1
SIZES = [(3, 5, 7, 33), (1, 1, 1, 1), (2, 1, 3, 5), (1, 4, 1, 7), (5, 3, 130, 257)]
SIZE_IDS = ["N3M5K7P33", "ones", "M1", "N1K1", "wide"]
# large enough (B·K, B·P, N·M ≥ 2^18) for the OpenMP-parallel path of the kernels
PARALLEL = (16, 17, 1031, 1031)


# cuda joins the comparisons where it can run; test_cuda_is_compared_where_it_runs says when not
BACKENDS = ["cpu"] + ([] if cuda.unavailable_reason() else ["cuda"])


@pytest.fixture(params=BACKENDS)
def backend(request):
    """A compiled backend module that can run here."""
    module = importlib.import_module(f"rdfast.backends.{request.param}")
    assert not module.unavailable_reason(), module.unavailable_reason()
    return module


def test_cuda_is_compared_where_it_runs():
    reason = cuda.unavailable_reason()
    if reason:
        pytest.skip(f"the cuda backend is not compared with the reference here: {reason}")
    assert "cuda" in BACKENDS


def device_of(backend):
    return "cuda" if backend.name == "cuda" else "cpu"


def normal(*shape, gen, scale=1.0):
    return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)


def uniform(*shape, gen, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(*shape, generator=gen, dtype=torch.float64)


def with_dtype(op, arrays, dtype, device="cpu"):
    """Copies of ``arrays`` on ``device``, the compute-dtype ("T") ones (and logvar) cast to ``dtype``."""
    signature = cpu.SIGNATURES[op]
    out = {}
    for name, a in arrays.items():
        if isinstance(a, torch.Tensor):
            is_t = name == "logvar" or (name in signature and signature[name].dtype == "T")
            a = a.to(device=device, dtype=dtype if is_t else a.dtype, copy=True)
        out[name] = a
    return out


def assert_close(name, out, ref_t, ref64, dtype):
    """The flash-attention tolerance rule of this module's docstring, for one array."""
    if not out.is_floating_point():
        assert torch.equal(out, ref_t), f"{name}: {out} != {ref_t}"
        return
    out, ref_t = out.double(), ref_t.double()
    finite = torch.isfinite(ref64)
    assert torch.equal(torch.isfinite(out), finite), f"{name}: non-finite values at other places"
    assert torch.equal(out[~finite].nan_to_num(), ref64[~finite].nan_to_num()), f"{name}: other non-finite values"
    o, r, r_t = out[finite], ref64[finite], ref_t[finite]
    if dtype == torch.float32:
        bound = 2 * (r_t - r).abs() + ATOL32 * (1 + r.abs())
    else:
        bound = ATOL64 * (1 + r.abs())
    err = (o - r).abs()
    assert (err <= bound).all(), f"{name}: max error {(err - bound).max().item():.3g} over the bound"


def check_op(backend, op, arrays, scalars, dtype, unchecked=()):
    """Run op on the backend and the reference (in dtype and float64); compare the arrays not
    named in ``unchecked``; return the backend's (on the CPU)."""
    arrays = with_dtype(op, arrays, dtype)  # the inputs as T holds them
    ran = {}
    for key, module, d, dev in (("out", backend, dtype, device_of(backend)), ("ref_t", ref, dtype, "cpu"),
                                ("ref64", ref, torch.float64, "cpu")):
        ran[key] = with_dtype(op, arrays, d, dev)
        getattr(module, op)(**ran[key], **scalars)
    out = {name: a.cpu() if isinstance(a, torch.Tensor) else a for name, a in ran["out"].items()}
    for name, a in arrays.items():
        if isinstance(a, torch.Tensor) and name not in unchecked:
            assert_close(f"{backend.name}.{op}.{name}", out[name], ran["ref_t"][name], ran["ref64"][name], dtype)
    return out


# ---- distortion ------------------------------------------------------------------------

LOGVARS = ["none", "scalar", "per_pixel", "per_row"]


def distortion_inputs(kind, logvar, N, M, P, gen):
    B = N * M
    if kind == "bernoulli_nll":
        x = uniform(N, P, gen=gen).round()
        xhat = normal(B, P, gen=gen, scale=4.0)
        xhat.view(-1)[::7] = 25.0  # beyond softplus' threshold of 20
    else:
        x = normal(N, P, gen=gen)
        xhat = normal(B, P, gen=gen)
    shapes = {"none": None, "scalar": (1,), "per_pixel": (P,), "per_row": (B, P)}
    v = None if shapes[logvar] is None else uniform(*shapes[logvar], gen=gen, low=-2.0, high=2.0)
    grad_logvar = torch.full((B, P), 7.0, dtype=torch.float64) if logvar == "per_row" else None
    return dict(x=x, xhat=xhat, logvar=v, d=torch.zeros(B, dtype=torch.float64), grad_xhat=torch.zeros(B, P),
                grad_logvar=grad_logvar)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("kind,logvar", [("gaussian_nll", lv) for lv in LOGVARS[1:]]
                         + [("bernoulli_nll", "none"), ("squared_error", "none")])
def test_distortion(backend, kind, logvar, N, M, K, P, dtype, gen):
    arrays = distortion_inputs(kind, logvar, N, M, P, gen)
    check_op(backend, "distortion", arrays, dict(kind=kind, n_chains=M), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_distortion_gaussian_without_logvar_is_unit_variance(backend, dtype, gen):
    """logvar None means v = 0 (the reference needs a tensor: it is given zeros [1])."""
    inputs = distortion_inputs("gaussian_nll", "none", 3, 2, 9, gen)
    arrays = with_dtype("distortion", inputs, dtype, device_of(backend))
    expected = with_dtype("distortion", dict(inputs, logvar=torch.zeros(1)), dtype)
    backend.distortion(kind="gaussian_nll", n_chains=2, **arrays)
    ref.distortion(kind="gaussian_nll", n_chains=2, **expected)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    for name in ("d", "grad_xhat"):
        torch.testing.assert_close(arrays[name].cpu(), expected[name], rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["gaussian_nll", "bernoulli_nll"])
def test_distortion_over_wide_ranges(backend, kind):
    """One number per row (P = 1) across the float32 range of exp and log1p: logits and
    log-variances in [−88, 95] (e^88 is near float32's largest), through the softplus
    threshold and into exp's subnormal results."""
    grid = torch.linspace(-88.0, 95.0, 4001, dtype=torch.float64)
    n = grid.numel()
    x = (torch.arange(2 * n) % 2).double().view(2 * n, 1)  # targets 0 and 1 for each point
    xhat = grid.repeat_interleave(2).view(2 * n, 1)
    arrays = dict(x=x, xhat=xhat if kind == "bernoulli_nll" else torch.zeros(2 * n, 1), logvar=None,
                  d=torch.zeros(2 * n, dtype=torch.float64), grad_xhat=torch.zeros(2 * n, 1), grad_logvar=None)
    if kind == "gaussian_nll":
        arrays.update(logvar=xhat.clone(), grad_logvar=torch.zeros(2 * n, 1))
    check_op(backend, "distortion", arrays, dict(kind=kind, n_chains=1), torch.float32)


def test_distortion_ignores_logvar_for_other_kinds(backend, gen):
    arrays = distortion_inputs("squared_error", "none", 2, 3, 5, gen)
    scalars = dict(kind="squared_error", n_chains=3)
    check_op(backend, "distortion", dict(arrays, logvar=torch.ones(5)), scalars, torch.float64)


# ---- leapfrog --------------------------------------------------------------------------

def state(B, K, gen):
    """A random current state with cached gradients, momenta, step sizes, prior terms."""
    return dict(
        z0=normal(B, K, gen=gen), g0=normal(B, K, gen=gen, scale=3.0), d0=uniform(B, gen=gen, high=100.0),
        p=normal(B, K, gen=gen), eps=uniform(B, gen=gen, low=1e-3, high=0.3),
        prior_energy=uniform(B, gen=gen, high=10.0), prior_grad=normal(B, K, gen=gen),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
def test_leapfrog_begin(backend, prior, N, M, K, P, dtype, gen):
    check_op(backend, "leapfrog_begin", begin_inputs(N * M, K, prior, gen), dict(beta=3.7, dbeta=0.25), dtype)


def begin_inputs(B, K, prior, gen):
    s = state(B, K, gen)
    arrays = dict(z0=s["z0"], g0=s["g0"], d0=s["d0"], p=s["p"], z=torch.zeros(B, K),
                  logw=normal(B, gen=gen, scale=10.0), h0=torch.zeros(B, dtype=torch.float64), eps=s["eps"])
    if prior == "given":
        arrays.update(prior_energy=s["prior_energy"], prior_grad=s["prior_grad"])
    return arrays


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
@pytest.mark.parametrize("op", ["leapfrog_step", "leapfrog_end"])
def test_leapfrog_kicks(backend, op, prior, N, M, K, P, dtype, gen):
    s = state(N * M, K, gen)
    arrays = dict(z=s["z0"], g=s["g0"], p=s["p"], eps=s["eps"])
    if prior == "given":
        arrays["prior_grad"] = s["prior_grad"]
    check_op(backend, op, arrays, dict(beta=123.5), dtype)


# ---- metropolis ------------------------------------------------------------------------

def energy(z, d, p, beta, prior_energy):
    """H = E(z) + β d + ½‖p‖² in float64 from the given (already rounded) values."""
    e = 0.5 * (z.double() ** 2).sum(1) if prior_energy is None else prior_energy
    return e + beta * d + 0.5 * (p.double() ** 2).sum(1)


def metropolis_inputs(B, K, dtype, prior, adapt, nonfinite, gen, beta):
    s = state(B, K, gen)
    z, g, p = (normal(B, K, gen=gen).to(dtype).double() for _ in range(3))
    d = uniform(B, gen=gen, high=50.0)
    prior_energy = s["prior_energy"] if prior == "given" else None
    t = 10
    arrays = dict(z0=s["z0"], g0=s["g0"], d0=s["d0"], z=z, g=g, d=d, p=p,
                  eps=torch.tensor([1e-4, 0.5, 0.4999, 1.0001e-4] * B, dtype=torch.float64)[:B],
                  accept_stat=uniform(B, gen=gen), n_accept=torch.randint(0, t, (B,), generator=gen),
                  n_diverge=torch.randint(0, 3, (B,), generator=gen), prior_energy=prior_energy)
    if nonfinite:  # proposals that must be rejected, counted, and leave no trace
        rows = torch.arange(B)
        z[rows % 4 == 0, K // 2] = math.nan
        p[rows % 4 == 1, 0] = math.inf
        d[rows % 4 == 2] = math.inf
        d[rows % 4 == 3] = math.nan
    # uniforms drawn first; h0 placed so that log u < h0 − H1 holds with margin ≥ 0.1 exactly
    # where `wanted` says, so every backend takes the same decisions
    u = uniform(B, gen=gen, low=1e-3, high=1.0)
    wanted = torch.rand(B, generator=gen) < 0.5
    margin = uniform(B, gen=gen, low=0.1, high=1.0)
    h1 = energy(z, d, p, beta, prior_energy)
    h0 = torch.where(torch.isfinite(h1), h1 + u.log() + torch.where(wanted, margin, -margin), torch.ones(B))
    arrays.update(h0=h0, u=u)
    return arrays, dict(beta=beta, adapt=adapt, target=0.65, t=t), wanted & torch.isfinite(h1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("adapt", [ADAPT_NONE, ADAPT_EMA, ADAPT_CUMULATIVE], ids=["none", "ema", "cumulative"])
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
def test_metropolis(backend, prior, adapt, N, M, K, P, dtype, gen):
    B = N * M
    arrays, scalars, accept = metropolis_inputs(B, K, dtype, prior, adapt, False, gen, beta=2.5)
    out = check_op(backend, "metropolis", arrays, scalars, dtype, unchecked=("eps",))
    assert torch.equal(out["n_accept"] - arrays["n_accept"], accept.long())
    assert torch.equal(out["z0"], torch.where(accept[:, None], arrays["z"], arrays["z0"]).to(dtype))
    assert torch.equal(out["eps"], adapted_eps(arrays["eps"], out["accept_stat"], adapt))


def adapted_eps(eps, stat, adapt):
    """DESIGN §2: ε·1.02 if a > 0.65 else ε·0.98, clamped to [1e-4, 0.5], in float64.

    (Not compared with the reference: its torch.where(cond, 1.02, 0.98) makes a float32
    factor, 1.0199999809…, which differs from 1.02 by 2e-8 relative.)
    """
    if adapt == ADAPT_NONE:
        return eps
    grow, shrink = torch.tensor(1.02, dtype=torch.float64), torch.tensor(0.98, dtype=torch.float64)
    return torch.clamp(eps * torch.where(stat > 0.65, grow, shrink), 1e-4, 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K", [(3, 5, 7), (2, 4, 1)], ids=["odd", "K1"])
def test_metropolis_rejects_nonfinite_proposals(backend, N, M, K, dtype, gen):
    B = N * M
    arrays, scalars, accept = metropolis_inputs(B, K, dtype, "standard_normal", ADAPT_EMA, True, gen, beta=2.5)
    out = check_op(backend, "metropolis", arrays, scalars, dtype, unchecked=("eps",))
    assert torch.equal(out["eps"], adapted_eps(arrays["eps"], out["accept_stat"], ADAPT_EMA))
    diverged = torch.ones(B, dtype=torch.bool)  # every row has a NaN or inf in z, p or d
    assert torch.equal(out["n_diverge"] - arrays["n_diverge"], diverged.long())
    assert torch.equal(out["n_accept"], arrays["n_accept"])
    for name in ("z0", "g0", "d0"):  # nothing leaks into the current state
        assert torch.equal(out[name], arrays[name].to(out[name].dtype))
        assert torch.isfinite(out[name]).all()
    assert not accept.any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_path(backend, dtype, gen):
    """The ops once each on sizes that run their OpenMP-parallel loops (record: test_record)."""
    N, M, K, P = PARALLEL
    B = N * M
    arrays = distortion_inputs("gaussian_nll", "per_row", N, M, P, gen)
    check_op(backend, "distortion", arrays, dict(kind="gaussian_nll", n_chains=M), dtype)
    check_op(backend, "leapfrog_begin", begin_inputs(B, K, "standard_normal", gen), dict(beta=3.7, dbeta=0.25), dtype)
    s = state(B, K, gen)
    check_op(backend, "leapfrog_step", dict(z=s["z0"], g=s["g0"], p=s["p"], eps=s["eps"]), dict(beta=1.5), dtype)
    arrays, scalars, _ = metropolis_inputs(B, K, dtype, "standard_normal", ADAPT_EMA, True, gen, beta=2.5)
    check_op(backend, "metropolis", arrays, scalars, dtype, unchecked=("eps",))


# ---- record ----------------------------------------------------------------------------

@pytest.mark.parametrize("N,M", [(3, 5), (1, 1), (4, 1), (2, 33), (256, 1031)],
                         ids=["odd", "ones", "M1", "M33", "parallel"])
def test_record(backend, N, M, gen):
    B = N * M
    logw = normal(B, gen=gen, scale=5.0) - 300.0
    d = uniform(B, gen=gen, high=40.0)
    logw[0], d[0] = -math.inf, math.inf  # a chain of zero weight: its d must not leak
    if N > 1:
        d[M] = math.nan
        logw[M] = -math.inf
    arrays = dict(logw=logw, d=d, log_z=torch.zeros(N, dtype=torch.float64), dist=torch.zeros(N, dtype=torch.float64),
                  ess=torch.zeros(N, dtype=torch.float64))
    out = check_op(backend, "record", arrays, dict(n_chains=M), torch.float64)
    if M > 1:
        assert torch.isfinite(out["dist"]).all() and torch.isfinite(out["log_z"]).all()


def test_record_item_with_all_weights_zero(backend):
    """All chains at log w = −inf: log Ẑ = −inf, D̂ = 0, ESS = NaN, as the reference."""
    arrays = dict(logw=torch.tensor([-math.inf, -math.inf, 0.5, 1.5], dtype=torch.float64),
                  d=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64),
                  log_z=torch.zeros(2, dtype=torch.float64), dist=torch.zeros(2, dtype=torch.float64),
                  ess=torch.zeros(2, dtype=torch.float64))
    out = check_op(backend, "record", arrays, dict(n_chains=2), torch.float64)
    assert out["log_z"][0] == -math.inf and out["dist"][0] == 0 and math.isnan(out["ess"][0])


# ---- argument checks of the backend functions ------------------------------------------

def test_backend_rejects_bad_arrays(gen):
    s = state(4, 3, gen)
    good = dict(z=s["z0"].clone(), g=s["g0"], p=s["p"].clone(), eps=s["eps"])
    with pytest.raises(TypeError, match="leapfrog_step: g must be torch.float64"):
        cpu.leapfrog_step(**dict(good, g=s["g0"].float()), beta=1.0)
    with pytest.raises(ValueError, match=r"leapfrog_step: p must have shape \[B, K\] = \[4, 3\]"):
        cpu.leapfrog_step(**dict(good, p=torch.zeros(4, 2, dtype=torch.float64)), beta=1.0)
    with pytest.raises(ValueError, match="leapfrog_step: z must be contiguous"):
        cpu.leapfrog_step(**dict(good, z=torch.zeros(3, 4, dtype=torch.float64).t()), beta=1.0)
    with pytest.raises(ValueError, match="record: logw has 5 rows, not a multiple of n_chains=2"):
        z = torch.zeros(5, dtype=torch.float64)
        cpu.record(z, z, 2, z, z, z)
    with pytest.raises(ValueError, match="distortion: kind must be one of"):
        cpu.distortion("l1", *[None] * 6, n_chains=1)
    f64 = dict(dtype=torch.float64)
    one_row = dict({k: torch.zeros(1, **f64) for k in ("d0", "d", "h0", "u", "eps", "accept_stat")},
                   **{k: torch.zeros(1, 1, **f64) for k in ("z0", "g0", "z", "g", "p")},
                   **{k: torch.zeros(1, dtype=torch.int64) for k in ("n_accept", "n_diverge")})
    with pytest.raises(ValueError, match="metropolis: adapt must be one of the codes"):
        cpu.metropolis(**one_row, beta=1.0, adapt="ema", target=0.65, t=1)
    with pytest.raises(ValueError, match="metropolis: t counts transitions"):
        cpu.metropolis(**one_row, beta=1.0, adapt=ADAPT_EMA, target=0.65, t=0)
