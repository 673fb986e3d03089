"""Every op of every backend against the torch reference (rdfast.backends.reference).

Each op runs three times on the same inputs, rounded to dtype T: the backend in T on its device,
the reference in T and the reference on those inputs cast to float64, both on the CPU; then
``rdfast.testing.assert_matches_reference`` applies the flash-attention tolerance rule (relative
to the reference's own float32 error). Selections (the state a Metropolis step keeps), counters
and accept decisions match exactly: uniforms are drawn away from the accept threshold. Backends:
cpu always; cuda where a GPU, a driver and torch with CUDA are (``test_cuda_runs_where_it_can``
says why not); triton on a GPU, or through the Triton interpreter on CPU tensors (with tiny tiles,
so that small arrays take several programs, column blocks and masked tails).
"""
import importlib
import math

import pytest
import torch

from rdfast.backends import cuda, reference, spec
from rdfast.sampling.metrics import DiagonalMetric
from rdfast.testing import assert_matches_reference

DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]
# (N items, M chains, K latent, P data): odd tails, M = 1, N = 1, K = 1, P = 1, long rows
SIZES = [pytest.param(3, 5, 7, 33, id="N3M5K7P33"), pytest.param(1, 1, 1, 1, id="ones"),
         pytest.param(2, 1, 3, 5, id="M1"), pytest.param(1, 4, 1, 7, id="N1K1"),
         pytest.param(2, 3, 130, 257, id="wide")]
PARALLEL = (16, 17, 1031, 1031)  # B·K, B·P, N·M ≥ 2^18: the cpu kernels' OpenMP-parallel loops
# test_cuda_runs_where_it_can says why cuda is not here; both run on a GPU where there is one (marked gpu)
BACKENDS = ["cpu", *([] if cuda.unavailable_reason() else [pytest.param("cuda", marks=pytest.mark.gpu)]),
            pytest.param("triton", marks=pytest.mark.gpu)]

# the Triton interpreter evaluates tiles with numpy, which warns where the maths means ±inf or NaN
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def load(name, request):
    """Backend ``name``: triton on a GPU, or in the interpreter with tiny tiles (skips if it cannot run)."""
    if name == "torch":
        return reference
    if name == "triton":
        module = request.getfixturevalue("triton_interpreter")
        if not torch.cuda.is_available():
            patch = request.getfixturevalue("monkeypatch")
            patch.setattr(module, "TILE_ELEMENTS", 32)
            patch.setattr(module, "MAX_BLOCK_COLS", 8)
        return module
    module = importlib.import_module(f"rdfast.backends.{name}")
    assert not module.unavailable_reason(), module.unavailable_reason()
    return module


@pytest.fixture(params=BACKENDS)
def backend(request):
    """A compiled backend module that can run here."""
    return load(request.param, request)


@pytest.fixture(params=["torch", *BACKENDS])
def any_backend(request):
    """Every backend, the reference included."""
    return load(request.param, request)


def device_of(backend) -> str:
    if backend.name == "cuda" or (backend.name == "triton" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def test_cuda_runs_where_it_can():
    if cuda.unavailable_reason():
        pytest.skip(f"the cuda backend is not compared with the reference here: {cuda.unavailable_reason()}")


def normal(*shape, gen, scale=1.0):
    return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)


def uniform(*shape, gen, low=0.0, high=1.0):
    return low + (high - low) * torch.rand(*shape, generator=gen, dtype=torch.float64)


def with_dtype(op, args, dtype, device="cpu"):
    """Copies of ``args`` on ``device``, the compute-dtype ("T") arrays (and logvar, and a diagonal
    metric's inv_mass) cast to ``dtype``."""
    arrays = spec.OPS[op].arrays
    out = {}
    for name, a in args.items():
        if name == "metric" and a is not None:
            a = DiagonalMetric(a.inv_mass.to(device=device, dtype=dtype, copy=True), a.n_chains)
        if isinstance(a, torch.Tensor):
            is_t = name == "logvar" or (name in arrays and arrays[name].dtype == "T")
            a = a.to(device=device, dtype=dtype if is_t else a.dtype, copy=True)
        out[name] = a
    return out


def check_op(backend, op, args, dtype, exact=()):
    """Run ``op`` on the backend and the reference (in ``dtype`` and float64); compare every array;
    return the backend's outputs (on the CPU)."""
    args = with_dtype(op, args, dtype)  # the inputs as T holds them
    ran = {}
    for key, module, d, dev in (("out", backend, dtype, device_of(backend)), ("ref", reference, dtype, "cpu"),
                                ("ref64", reference, torch.float64, "cpu")):
        ran[key] = with_dtype(op, args, d, dev)
        getattr(module, op)(**ran[key])
    out = {name: a.cpu() if isinstance(a, torch.Tensor) else a for name, a in ran["out"].items()}
    for name, a in args.items():
        if isinstance(a, torch.Tensor):
            assert_matches_reference(f"{backend.name}.{op}.{name}", out[name], ran["ref"][name], ran["ref64"][name],
                                     dtype, exact=name in exact)
    return out


# ---- distortion ------------------------------------------------------------------------

def distortion_args(kind, logvar, N, M, P, gen):
    B = N * M
    if kind == "bernoulli_nll":
        x = uniform(N, P, gen=gen).round()
        xhat = normal(B, P, gen=gen, scale=4.0)
        xhat.view(-1)[::7] = 25.0  # beyond softplus' threshold of 20
        xhat.view(-1)[3::11] = -40.0  # σ far in the lower tail
    else:
        x = normal(N, P, gen=gen)
        xhat = normal(B, P, gen=gen)
    shapes = {"none": None, "scalar": (1,), "per_pixel": (P,), "per_row": (B, P)}
    v = None if shapes[logvar] is None else uniform(*shapes[logvar], gen=gen, low=-2.0, high=2.0)
    grad_logvar = torch.full((B, P), 7.0, dtype=torch.float64) if logvar == "per_row" else None
    return dict(kind=kind, x=x, xhat=xhat, logvar=v, d=torch.zeros(B, dtype=torch.float64),
                grad_xhat=torch.zeros(B, P), grad_logvar=grad_logvar, n_chains=M)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES)
@pytest.mark.parametrize("kind,logvar", [("gaussian_nll", lv) for lv in ("none", "scalar", "per_pixel", "per_row")]
                         + [("bernoulli_nll", "none"), ("squared_error", "none")])
def test_distortion(backend, kind, logvar, N, M, K, P, dtype, gen):
    check_op(backend, "distortion", distortion_args(kind, logvar, N, M, P, gen), dtype)


@pytest.mark.parametrize("kind", ["gaussian_nll", "bernoulli_nll"])
def test_distortion_over_wide_ranges(backend, kind):
    """One number per row (P = 1) across the float32 range of exp and log1p: logits and
    log-variances in [−88, 95] (e^88 is near float32's largest), through the softplus
    threshold and into exp's subnormal results."""
    grid = torch.linspace(-88.0, 95.0, 401 if backend.name == "triton" else 4001, dtype=torch.float64)
    n = grid.numel()
    x = (torch.arange(2 * n) % 2).double().view(2 * n, 1)  # targets 0 and 1 for each point
    xhat = grid.repeat_interleave(2).view(2 * n, 1)
    args = dict(kind=kind, x=x, xhat=xhat if kind == "bernoulli_nll" else torch.zeros(2 * n, 1), logvar=None,
                d=torch.zeros(2 * n, dtype=torch.float64), grad_xhat=torch.zeros(2 * n, 1), grad_logvar=None,
                n_chains=1)
    if kind == "gaussian_nll":
        args.update(logvar=xhat.clone(), grad_logvar=torch.zeros(2 * n, 1))
    check_op(backend, "distortion", args, torch.float32)


def test_distortion_ignores_logvar_for_other_kinds(backend, gen):
    args = distortion_args("squared_error", "none", 2, 3, 5, gen)
    check_op(backend, "distortion", dict(args, logvar=torch.ones(5)), torch.float64)


# ---- leapfrog --------------------------------------------------------------------------

def state(B, K, gen):
    """A random current state with cached gradients, momenta, step sizes, prior terms."""
    return dict(z0=normal(B, K, gen=gen), g0=normal(B, K, gen=gen, scale=3.0), d0=uniform(B, gen=gen, high=100.0),
                p=normal(B, K, gen=gen), eps=uniform(B, gen=gen, low=1e-3, high=0.3),
                prior_energy=uniform(B, gen=gen, high=10.0), prior_grad=normal(B, K, gen=gen))


METRICS = ["identity", "diagonal"]


def metric_of(kind, N, M, K, gen):
    """None (the identity) or a diagonal metric with entries over four decades, per item."""
    if kind == "identity":
        return None
    return DiagonalMetric(torch.exp(uniform(N, K, gen=gen, low=-7.0, high=2.0)), M)


def begin_args(N, M, K, prior, gen, metric="identity", beta=3.7, dbeta=0.25):
    B = N * M
    s = state(B, K, gen)
    args = dict(z0=s["z0"], g0=s["g0"], d0=s["d0"], p=s["p"], z=torch.zeros(B, K), logw=normal(B, gen=gen, scale=10.0),
                h0=torch.zeros(B, dtype=torch.float64), beta=beta, dbeta=dbeta, eps=s["eps"],
                metric=metric_of(metric, N, M, K, gen))
    if prior == "given":
        args.update(prior_energy=s["prior_energy"], prior_grad=s["prior_grad"])
    return args


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES)
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
@pytest.mark.parametrize("metric", METRICS)
def test_leapfrog_begin(backend, metric, prior, N, M, K, P, dtype, gen):
    check_op(backend, "leapfrog_begin", begin_args(N, M, K, prior, gen, metric), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES)
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
@pytest.mark.parametrize("op,metric", [("leapfrog_step", "identity"), ("leapfrog_step", "diagonal"),
                                       ("leapfrog_end", "identity")])
def test_leapfrog_kicks(backend, op, metric, prior, N, M, K, P, dtype, gen):
    s = state(N * M, K, gen)
    args = dict(z=s["z0"], g=s["g0"], p=s["p"], beta=123.5, eps=s["eps"])
    if op == "leapfrog_step":
        args["metric"] = metric_of(metric, N, M, K, gen)
    if prior == "given":
        args["prior_grad"] = s["prior_grad"]
    check_op(backend, op, args, dtype)


# ---- metropolis ------------------------------------------------------------------------

def energy(z, d, p, beta, prior_energy, metric):
    """H = E(z) + β d + K(p) in float64 from the given (already rounded) values."""
    e = 0.5 * (z.double() ** 2).sum(1) if prior_energy is None else prior_energy
    return e + beta * d + (0.5 * (p.double() ** 2).sum(1) if metric is None else metric.kinetic(p.double()))


def metropolis_args(N, M, K, dtype, prior, nonfinite, gen, beta=2.5, metric="identity"):
    """Inputs, and the rows that must be accepted. Uniforms are drawn first and h0 placed so that
    log u < h0 − H1 holds with margin ≥ 0.1 exactly where wanted, so every backend decides alike.
    With ``nonfinite`` every row's proposal has a NaN or inf in z, p, d or the prior energy (and a
    NaN in z that must never reach the state)."""
    B = N * M
    s = state(B, K, gen)
    metric = metric_of(metric, N, M, K, gen)
    if metric is not None:  # the metric as T holds it decides: h0 is placed from its rounded values
        metric.inv_mass = metric.inv_mass.to(dtype).double()
    z, g, p = (normal(B, K, gen=gen).to(dtype).double() for _ in range(3))
    d = uniform(B, gen=gen, high=50.0)
    prior_energy = s["prior_energy"] if prior == "given" else None
    if nonfinite:
        rows = torch.arange(B)
        if prior_energy is None:
            z[rows % 4 == 0, K // 2] = math.nan
        else:
            prior_energy[rows % 4 == 0] = math.nan
        p[rows % 4 == 1, 0] = math.inf
        d[rows % 4 == 2] = math.inf
        if prior_energy is None:
            d[rows % 4 == 3] = math.nan
        else:
            prior_energy[rows % 4 == 3] = -math.inf
        z[:, 0] = math.nan
    u = uniform(B, gen=gen, low=1e-3, high=1.0)
    wanted = torch.rand(B, generator=gen) < 0.5
    margin = uniform(B, gen=gen, low=0.1, high=1.0)
    h1 = energy(z, d, p, beta, prior_energy, metric)
    h0 = torch.where(torch.isfinite(h1), h1 + u.log() + torch.where(wanted, margin, -margin), torch.ones(B))
    f64 = dict(dtype=torch.float64)
    args = dict(z0=s["z0"], g0=s["g0"], d0=s["d0"], z=z, g=g, d=d, p=p, h0=h0, u=u, beta=beta,
                accepted=torch.full((B,), 7.0, **f64), accept_prob=torch.full((B,), 7.0, **f64),
                n_accept=torch.randint(0, 10, (B,), generator=gen), n_diverge=torch.randint(0, 3, (B,), generator=gen),
                metric=metric, prior_energy=prior_energy)
    return args, wanted & torch.isfinite(h1)


SELECTED = ("z0", "g0", "d0", "accepted")  # kept or copied whole: equal to the reference bit for bit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K,P", SIZES)
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
@pytest.mark.parametrize("metric", METRICS)
def test_metropolis(backend, metric, prior, N, M, K, P, dtype, gen):
    args, accept = metropolis_args(N, M, K, dtype, prior, False, gen, metric=metric)
    out = check_op(backend, "metropolis", args, dtype, exact=SELECTED)
    assert torch.equal(out["n_accept"] - args["n_accept"], accept.long())
    assert torch.equal(out["accepted"], accept.double())
    assert torch.equal(out["z0"], torch.where(accept[:, None], args["z"], args["z0"]).to(dtype))
    assert ((out["accept_prob"] > 0) & (out["accept_prob"] <= 1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K", [(3, 5, 7), (2, 4, 1)], ids=["odd", "K1"])
@pytest.mark.parametrize("prior", ["standard_normal", "given"])
@pytest.mark.parametrize("metric", METRICS)
def test_metropolis_rejects_nonfinite_proposals(backend, metric, prior, N, M, K, dtype, gen):
    B = N * M
    args, accept = metropolis_args(N, M, K, dtype, prior, True, gen, metric=metric)
    out = check_op(backend, "metropolis", args, dtype, exact=SELECTED)
    assert torch.equal(out["n_diverge"] - args["n_diverge"], torch.ones(B, dtype=torch.int64))
    assert torch.equal(out["n_accept"], args["n_accept"]) and not accept.any()
    assert torch.equal(out["accepted"], torch.zeros(B, dtype=torch.float64))
    assert torch.equal(out["accept_prob"], torch.zeros(B, dtype=torch.float64))
    for name in ("z0", "g0", "d0"):  # nothing leaks into the current state
        assert torch.equal(out[name], args[name].to(out[name].dtype)) and torch.isfinite(out[name]).all()


# ---- record ----------------------------------------------------------------------------

@pytest.mark.parametrize("N,M", [(3, 5), (1, 1), (4, 1), (2, 33)], ids=["odd", "ones", "M1", "M33"])
def test_record(backend, N, M, gen):
    B = N * M
    logw = normal(B, gen=gen, scale=5.0) - 300.0
    d = uniform(B, gen=gen, high=40.0)
    logw[0], d[0] = -math.inf, math.inf  # a chain of zero weight: its d must not leak
    if N > 1:
        d[M] = math.nan
        logw[M] = -math.inf
    args = dict(logw=logw, d=d, n_chains=M, log_z=torch.zeros(N, dtype=torch.float64),
                dist=torch.zeros(N, dtype=torch.float64), ess=torch.zeros(N, dtype=torch.float64))
    out = check_op(backend, "record", args, torch.float64)
    if M > 1:
        assert torch.isfinite(out["dist"]).all() and torch.isfinite(out["log_z"]).all()


def test_record_item_with_all_weights_zero(backend):
    """All chains at log w = −inf: log Ẑ = −inf, D̂ = 0, ESS = NaN, as the reference."""
    args = dict(logw=torch.tensor([-math.inf, -math.inf, 0.5, 1.5], dtype=torch.float64),
                d=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), n_chains=2,
                log_z=torch.zeros(2, dtype=torch.float64), dist=torch.zeros(2, dtype=torch.float64),
                ess=torch.zeros(2, dtype=torch.float64))
    out = check_op(backend, "record", args, torch.float64)
    assert out["log_z"][0] == -math.inf and out["dist"][0] == 0 and math.isnan(out["ess"][0])


# ---- sizes, scalars, launches ------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_sizes(backend, dtype, gen):
    """Every op once on sizes that run the cpu kernels' OpenMP-parallel loops (and many programs
    of the other backends)."""
    if backend.name == "triton" and not torch.cuda.is_available():
        pytest.skip("too large for the Triton interpreter; test_many_programs covers several programs")
    N, M, K, P = PARALLEL
    B = N * M
    check_op(backend, "distortion", distortion_args("gaussian_nll", "per_row", N, M, P, gen), dtype)
    check_op(backend, "leapfrog_begin", begin_args(N, M, K, "standard_normal", gen, "diagonal"), dtype)
    s = state(B, K, gen)
    check_op(backend, "leapfrog_step", dict(z=s["z0"], g=s["g0"], p=s["p"], beta=1.5, eps=s["eps"],
                                            metric=metric_of("diagonal", N, M, K, gen)), dtype)
    args, _ = metropolis_args(N, M, K, dtype, "standard_normal", True, gen, metric="diagonal")
    check_op(backend, "metropolis", args, dtype, exact=SELECTED)
    logw, d = normal(B, gen=gen), uniform(B, gen=gen)
    check_op(backend, "record", dict(logw=logw, d=d, n_chains=M, log_z=torch.zeros(N, dtype=torch.float64),
                                     dist=torch.zeros(N, dtype=torch.float64), ess=torch.zeros(N, dtype=torch.float64)),
             torch.float64)


def test_many_programs(backend, gen, monkeypatch):
    """The shipped tile sizes with several programs per launch and masked tails."""
    if backend.name == "triton":
        monkeypatch.setattr(backend, "TILE_ELEMENTS", 2048)
        monkeypatch.setattr(backend, "MAX_BLOCK_COLS", 128)
    N, M, K, P = 41, 5, 3, 150
    for dtype in (torch.float32, torch.float64):
        check_op(backend, "distortion", distortion_args("gaussian_nll", "per_pixel", N, M, P, gen), dtype)
        args, _ = metropolis_args(N, M, K, dtype, "standard_normal", False, gen, metric="diagonal")
        check_op(backend, "metropolis", args, dtype, exact=SELECTED)


def transition_ops(be, a, beta, dbeta):
    """leapfrog_begin, a step, the end and metropolis on ``a`` (mutated) with the given scalars."""
    be.leapfrog_begin(a["z0"], a["g0"], a["d0"], a["p"], a["z"], a["logw"], a["h0"], beta, dbeta, a["eps"])
    be.leapfrog_step(a["z"], a["g"], a["p"], beta, a["eps"])
    be.leapfrog_end(a["z"], a["g"], a["p"], beta, a["eps"])
    be.metropolis(a["z0"], a["g0"], a["d0"], a["z"], a["g"], a["d"], a["p"], a["h0"], a["u"], beta, a["accepted"],
                  a["accept_prob"], a["n_accept"], a["n_diverge"])
    return a


def transition_inputs(B, K, dtype, device, seed=0):
    """Arrays of every op (rows B, latent K) on ``device``; uniforms near 1 and h0 large, so some
    proposals are accepted and some rejected."""
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64, device=device)
    return dict(z0=normal(B, K, gen=g).to(device, dtype), g0=normal(B, K, gen=g, scale=3.0).to(device, dtype),
                d0=uniform(B, gen=g, high=20.0).to(device), p=normal(B, K, gen=g).to(device, dtype),
                z=torch.zeros(B, K, dtype=dtype, device=device), logw=normal(B, gen=g, scale=5.0).to(device),
                h0=torch.zeros(B, **f64), eps=uniform(B, gen=g, low=1e-3, high=0.3).to(device),
                g=normal(B, K, gen=g).to(device, dtype), d=uniform(B, gen=g, high=20.0).to(device),
                u=uniform(B, gen=g, low=0.05).to(device), accepted=torch.zeros(B, **f64),
                accept_prob=torch.zeros(B, **f64), n_accept=torch.randint(0, 5, (B,), generator=g).to(device),
                n_diverge=torch.zeros(B, dtype=torch.int64, device=device))


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalars_in_memory_equal_scalars_by_value(any_backend, dtype):
    """β and Δβ as 0-d tensors on the arrays' device (what a captured CUDA graph needs) or as
    numbers: exactly the same results."""
    device = device_of(any_backend)
    beta, dbeta = 1234.5678901234567, 0.1 + 1e-13
    by_value = transition_ops(any_backend, transition_inputs(37, 5, dtype, device), beta, dbeta)
    f64 = dict(dtype=torch.float64, device=device)
    in_memory = transition_ops(any_backend, transition_inputs(37, 5, dtype, device), torch.tensor(beta, **f64),
                               torch.tensor(dbeta, **f64))
    for key, value in by_value.items():
        assert torch.equal(in_memory[key], value), key
    accepted = int(by_value["n_accept"].sum() - transition_inputs(37, 5, dtype, device)["n_accept"].sum())
    assert 0 < accepted < 37


def test_scalar_tensors_are_checked(backend):
    a = transition_inputs(4, 3, torch.float64, device_of(backend))
    dev = a["z"].device
    with pytest.raises(TypeError, match="beta"):
        backend.leapfrog_step(a["z"], a["g"], a["p"], torch.tensor(1.0, dtype=torch.float32, device=dev), a["eps"])
    with pytest.raises(TypeError, match="beta"):
        backend.leapfrog_step(a["z"], a["g"], a["p"], torch.ones(1, dtype=torch.float64, device=dev), a["eps"])
    with pytest.raises(TypeError, match="dbeta"):
        transition_ops(backend, a, 1.0, torch.tensor(0.5, device=dev))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prepared_launch_follows_its_arrays(any_backend, dtype):
    """A launch prepared once computes, at every launch, the op on its arrays' current values."""
    device = device_of(any_backend)
    a = transition_inputs(9, 4, dtype, device)
    launch = any_backend.prepare("leapfrog_step", z=a["z"], g=a["g"], p=a["p"], beta=0.5, eps=a["eps"])
    twin = {k: v.clone() for k, v in a.items()}
    for _ in range(3):
        launch()
        any_backend.leapfrog_step(twin["z"], twin["g"], twin["p"], 0.5, twin["eps"])
        a["g"].mul_(0.5)  # the next launch reads the new gradient
        twin["g"].mul_(0.5)
    assert torch.equal(a["z"], twin["z"]) and torch.equal(a["p"], twin["p"])


def test_backend_rejects_bad_arrays(backend, gen):
    dev = device_of(backend)
    s = {k: v.to(dev) for k, v in state(4, 3, gen).items()}
    good = dict(z=s["z0"].clone(), g=s["g0"], p=s["p"].clone(), eps=s["eps"])
    with pytest.raises(TypeError, match="leapfrog_step: g must be torch.float64"):
        backend.leapfrog_step(**dict(good, g=s["g0"].float()), beta=1.0)
    with pytest.raises(ValueError, match=r"leapfrog_step: p must have shape \[B, K\] = \[4, 3\]"):
        backend.leapfrog_step(**dict(good, p=torch.zeros(4, 2, dtype=torch.float64, device=dev)), beta=1.0)
    with pytest.raises(ValueError, match="leapfrog_step: z must be contiguous"):
        backend.leapfrog_step(**dict(good, z=torch.zeros(3, 4, dtype=torch.float64, device=dev).t()), beta=1.0)
    with pytest.raises(ValueError, match="record: logw has 5 rows, not a multiple of n_chains=2"):
        z = torch.zeros(5, dtype=torch.float64, device=dev)
        backend.record(z, z, 2, z, z, z)
    with pytest.raises(ValueError, match="distortion: kind must be one of"):
        backend.distortion("l1", *[None] * 6, n_chains=1)
    with pytest.raises(TypeError, match="leapfrog_step: missing beta"):
        backend.leapfrog_step(**good)
    with pytest.raises(TypeError, match="metric .* has no fused kernel"):
        backend.leapfrog_step(**good, beta=1.0, metric=object())
    with pytest.raises(ValueError, match=r"leapfrog_step: metric.inv_mass must be contiguous with shape \[N, K\] = \[2, 3\]"):
        backend.leapfrog_step(**good, beta=1.0, metric=DiagonalMetric(torch.ones(2, 2, dtype=torch.float64, device=dev), 2))
    with pytest.raises(TypeError, match="leapfrog_step: metric.inv_mass must be a torch.float64 tensor"):
        backend.leapfrog_step(**good, beta=1.0, metric=DiagonalMetric(torch.ones(2, 3, device=dev), 2))


def test_compiled_enums_equal_the_spec():
    """The codes the extension compiles (csrc/op_args.h) are the spec's, name by name."""
    from rdfast import _C
    from rdfast.fastpath.cpu_kernels import Activation

    for enum in (spec.DType, spec.Kind, spec.LogvarLayout, spec.MetricLayout, Activation):
        key = "MlpActivation" if enum is Activation else enum.__name__
        assert _C.enums[key] == {member.name: member.value for member in enum}, key
