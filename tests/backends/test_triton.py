"""The Triton backend against the torch reference, op by op, and one whole AIS run.

Without a CUDA device the kernels run on CPU tensors through the Triton interpreter, which
needs TRITON_INTERPRET=1 whenever a function is decorated with ``triton.jit`` (Triton's own
library functions at ``import triton``, ours at ``import rdfast.kernels``). This module
imports both with it at collection and sets it while its tests run; if triton had been
imported without it before, the tests here skip and ``test_module_in_fresh_process`` runs
them in a new process.

Tolerances (the flash-attention way): in float32, |triton − ref64| ≤ 2·|ref32 − ref64| + atol
where ref64 is the reference on the same inputs cast to float64; float64 results match the
reference to rounding; selections, accept decisions and counters match exactly.
"""
import importlib
import os
import subprocess
import sys

import pytest
import torch

from rdfast.backends import reference as ref

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
F64 = dict(dtype=torch.float64, device=DEVICE)
SIZES = [(3, 5, 7), (1, 1, 1), (2, 1, 19), (1, 6, 2)]  # (N items, M chains, K or P)
DTYPES = [torch.float32, torch.float64]

# the interpreter evaluates tiles with numpy, which warns where the maths means ±inf or NaN
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


if DEVICE == "cpu" and "triton" not in sys.modules:
    # Import triton and the kernels for the interpreter now, at collection, before any test can
    # import them for the GPU; the variable itself is set only while this module's tests run.
    _before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        importlib.import_module("rdfast.backends.triton")
    finally:
        if _before is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = _before


def interpreter_blocked(backend) -> bool:
    """No CUDA, and triton or the kernels were imported without TRITON_INTERPRET=1 (by a test
    that ran before this module was collected): they cannot run on CPU tensors in this process."""
    return DEVICE == "cpu" and not backend._interpreted()


@pytest.fixture(scope="module")
def tb():
    """The triton backend module, with kernels that run on this machine's tensors."""
    backend = importlib.import_module("rdfast.backends.triton")
    if backend._IMPORT_ERROR:
        pytest.skip(backend._IMPORT_ERROR)
    if interpreter_blocked(backend):
        pytest.skip("triton was imported before TRITON_INTERPRET=1 was set; "
                    "test_module_in_fresh_process runs these tests in a new process")
    patch = pytest.MonkeyPatch()
    if DEVICE == "cpu":
        patch.setenv("TRITON_INTERPRET", "1")  # the registry offers triton on the CPU only with it
    assert backend.unavailable_reason() == ""
    yield backend
    patch.undo()


@pytest.fixture
def small_blocks(tb, monkeypatch):
    """Tiny tiles, so that small tensors take several programs, column blocks and masked tails."""
    monkeypatch.setattr(tb, "TILE_ELEMENTS", 32)
    monkeypatch.setattr(tb, "MAX_BLOCK_COLS", 8)


def rand(*shape, dtype=torch.float64, scale=1.0, gen):
    return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(device=DEVICE, dtype=dtype)


def uniform(*shape, low=0.0, high=1.0, gen):
    return low + (high - low) * torch.rand(*shape, generator=gen, dtype=torch.float64).to(DEVICE)


def call(backend, op, args):
    """Run ``op`` on clones of the tensors in ``args``; returns the (mutated) clones."""
    out = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    getattr(backend, op)(**out)
    return out


def as_float64(args):
    return {k: v.double() if isinstance(v, torch.Tensor) and v.dtype == torch.float32 else v
            for k, v in args.items()}


def check_op(tb, op, args, dtype, exact=()):
    """Compare ``op`` of the triton backend with the reference on ``args`` (tensors of ``dtype``)."""
    got = call(tb, op, args)
    ref_same = call(ref, op, args)
    ref64 = call(ref, op, as_float64(args))
    for key, value in got.items():
        if not isinstance(value, torch.Tensor):
            continue
        if key in exact or not value.is_floating_point():
            torch.testing.assert_close(value, ref_same[key], rtol=0, atol=0, equal_nan=True, msg=key)
        elif dtype == torch.float64:
            torch.testing.assert_close(value, ref64[key], rtol=1e-12, atol=1e-12, equal_nan=True, msg=key)
        else:
            want, base = ref64[key], ref_same[key].double()
            atol = 1e-6 * (1.0 + want.abs())
            ok = (value.double() == want) | (value.isnan() & want.isnan())
            ok |= (value.double() - want).abs() <= 2.0 * (base - want).abs() + atol
            assert ok.all(), f"{key}: {int((~ok).sum())} elements out of tolerance"
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,P", SIZES + [(2, 3, 37)])
@pytest.mark.parametrize("kind,logvar", [("gaussian_nll", "shared"), ("gaussian_nll", "pixel"),
                                         ("gaussian_nll", "row"), ("bernoulli_nll", None),
                                         ("squared_error", None)])
def test_distortion(tb, small_blocks, kind, logvar, N, M, P, dtype):
    gen = torch.Generator().manual_seed(N * 100 + M * 10 + P)
    B = N * M
    x = rand(N, P, dtype=dtype, gen=gen)
    xhat = rand(B, P, dtype=dtype, scale=3.0, gen=gen)
    if kind == "bernoulli_nll":
        x = (x > 0).to(dtype)
        xhat[0, 0], xhat[-1, -1] = 40.0, -40.0  # softplus and σ far in both tails
    shapes = {"shared": (1,), "pixel": (P,), "row": (B, P), None: None}
    lv = None if logvar is None else rand(*shapes[logvar], dtype=dtype, scale=0.5, gen=gen)
    args = dict(kind=kind, x=x, xhat=xhat, logvar=lv, d=torch.zeros(B, **F64),
                grad_xhat=torch.zeros(B, P, dtype=dtype, device=DEVICE),
                grad_logvar=torch.zeros(B, P, dtype=dtype, device=DEVICE) if logvar == "row" else None,
                n_chains=M)
    check_op(tb, "distortion", args, dtype)


def states(N, M, K, dtype, gen):
    """Random states z, cached gradients g [B, K], momenta p and per-row d, ε."""
    B = N * M
    return dict(z=rand(B, K, dtype=dtype, gen=gen), g=rand(B, K, dtype=dtype, scale=2.0, gen=gen),
                p=rand(B, K, dtype=dtype, gen=gen), d=uniform(B, low=0.0, high=50.0, gen=gen),
                eps=uniform(B, low=0.01, high=0.3, gen=gen))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K", SIZES)
@pytest.mark.parametrize("custom_prior", [False, True])
def test_leapfrog_begin(tb, small_blocks, N, M, K, dtype, custom_prior):
    gen = torch.Generator().manual_seed(1 + N + M + K)
    B, s = N * M, states(N, M, K, dtype, gen)
    args = dict(z0=s["z"], g0=s["g"], d0=s["d"], p=s["p"], z=torch.zeros_like(s["z"]),
                logw=rand(B, gen=gen), h0=torch.zeros(B, **F64), beta=2.3, dbeta=0.1, eps=s["eps"],
                prior_energy=uniform(B, high=5.0, gen=gen) if custom_prior else None,
                prior_grad=rand(B, K, dtype=dtype, gen=gen) if custom_prior else None)
    check_op(tb, "leapfrog_begin", args, dtype)


@pytest.mark.parametrize("op", ["leapfrog_step", "leapfrog_end"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K", SIZES)
@pytest.mark.parametrize("custom_prior", [False, True])
def test_leapfrog_kick(tb, small_blocks, op, N, M, K, dtype, custom_prior):
    gen = torch.Generator().manual_seed(2 + N + M + K)
    B, s = N * M, states(N, M, K, dtype, gen)
    args = dict(z=s["z"], g=s["g"], p=s["p"], beta=torch.tensor(0.7, **F64), eps=s["eps"],  # β on the device
                prior_grad=rand(B, K, dtype=dtype, gen=gen) if custom_prior else None)
    check_op(tb, op, args, dtype)


def metropolis_args(N, M, K, dtype, adapt, custom_prior, gen):
    """Proposals with log u at least 0.3 from the threshold h0 − H1, and some non-finite ones."""
    B, beta = N * M, 1.7
    cur, new = states(N, M, K, dtype, gen), states(N, M, K, dtype, gen)
    prior_energy = uniform(B, high=5.0, gen=gen) if custom_prior else None
    bad = torch.arange(B, device=DEVICE) % 5 == 1  # [B] rows with a non-finite proposal
    poison = [float("nan"), float("inf"), -float("inf")]
    for i, row in enumerate(torch.nonzero(bad).flatten().tolist()):
        kind = i % 3
        if kind == 0:
            if custom_prior:
                prior_energy[row] = poison[i % 2]
            else:
                new["z"][row, -1] = poison[i % 3]
        elif kind == 1:
            new["p"][row, 0] = poison[1 + i % 2]
        else:
            new["d"][row] = poison[i % 2]
        new["z"][row, 0] = float("nan")  # must never reach z0
    energy = prior_energy if custom_prior else 0.5 * (new["z"].double() ** 2).sum(1)
    h1 = energy + beta * new["d"] + 0.5 * (new["p"].double() ** 2).sum(1)
    gap = uniform(B, low=-3.0, high=-0.5, gen=gen)  # h0 − H1 on the finite rows
    h0 = torch.where(torch.isfinite(h1), h1 + gap, torch.zeros_like(h1))
    side = torch.where(torch.rand(B, generator=gen).to(DEVICE) < 0.5, -0.3, 0.3).double()
    u = torch.where(bad, torch.full_like(gap, 1e-300), torch.exp(gap + side))
    eps = cur["eps"]
    eps[0] = 0.5  # at the upper clamp
    eps[-1] = 1e-4  # at the lower clamp
    n_accept = torch.randint(0, 7, (B,), generator=gen).to(DEVICE)
    return dict(z0=cur["z"], g0=cur["g"], d0=cur["d"], z=new["z"], g=new["g"], d=new["d"], p=new["p"],
                h0=h0, u=u, beta=beta, eps=eps, accept_stat=uniform(B, low=0.3, high=1.0, gen=gen),
                n_accept=n_accept, n_diverge=torch.randint(0, 3, (B,), generator=gen).to(DEVICE),
                adapt=adapt, target=0.65, t=7, prior_energy=prior_energy), bad


SELECTED = ("z0", "g0", "d0")  # copied from the proposal or kept: equal to the reference bit for bit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,M,K", SIZES + [(4, 5, 3)])
@pytest.mark.parametrize("adapt", [0, 1, 2])
@pytest.mark.parametrize("custom_prior", [False, True])
def test_metropolis(tb, small_blocks, N, M, K, dtype, adapt, custom_prior):
    gen = torch.Generator().manual_seed(3 + N + M + K + adapt)
    args, bad = metropolis_args(N, M, K, dtype, adapt, custom_prior, gen)
    got = check_op(tb, "metropolis", args, dtype, exact=SELECTED)
    assert torch.isfinite(got["z0"]).all() and torch.isfinite(got["d0"]).all()
    diverged = got["n_diverge"] - args["n_diverge"]
    assert torch.equal(diverged, bad.long())
    assert torch.equal(got["n_accept"][bad], args["n_accept"][bad])


@pytest.mark.parametrize("N,M", [(3, 5), (1, 1), (4, 1), (2, 19)])
def test_record(tb, small_blocks, N, M):
    gen = torch.Generator().manual_seed(N + M)
    B = N * M
    logw = rand(B, scale=5.0, gen=gen)
    d = uniform(B, high=40.0, gen=gen)
    logw[0], d[0] = -float("inf"), float("nan")  # a chain of zero weight adds nothing
    if N > 1:
        logw[M:2 * M] = -float("inf")  # an item whose chains all have zero weight
    args = dict(logw=logw, d=d, n_chains=M, log_z=torch.zeros(N, **F64), dist=torch.zeros(N, **F64),
                ess=torch.zeros(N, **F64))
    got = check_op(tb, "record", args, torch.float64)
    if M > 1:
        assert torch.isfinite(got["dist"][0])


def test_default_blocks_many_programs(tb):
    """The shipped block sizes, with several programs per launch and a masked tail."""
    gen = torch.Generator().manual_seed(7)
    N, M, K, P = 41, 5, 3, 150
    B = N * M
    for dtype in DTYPES:
        args = dict(kind="gaussian_nll", x=rand(N, P, dtype=dtype, gen=gen), xhat=rand(B, P, dtype=dtype, gen=gen),
                    logvar=rand(P, dtype=dtype, gen=gen), d=torch.zeros(B, **F64),
                    grad_xhat=torch.zeros(B, P, dtype=dtype, device=DEVICE), grad_logvar=None, n_chains=M)
        check_op(tb, "distortion", args, dtype)
        args, _ = metropolis_args(N, M, K, dtype, 1, False, gen)
        check_op(tb, "metropolis", args, dtype, exact=SELECTED)
    args = dict(logw=rand(B, gen=gen), d=uniform(B, gen=gen), n_chains=M, log_z=torch.zeros(N, **F64),
                dist=torch.zeros(N, **F64), ess=torch.zeros(N, **F64))
    check_op(tb, "record", args, torch.float64)


def test_rejects_bad_tensors(tb):
    z = torch.zeros(4, 3, device=DEVICE)
    eps = torch.full((4,), 0.1, **F64)
    with pytest.raises(TypeError, match="eps"):
        tb.leapfrog_step(z, z.clone(), z.clone(), 1.0, eps.float())
    with pytest.raises(ValueError, match="contiguous"):
        tb.leapfrog_step(z, z.clone(), torch.zeros(3, 4, device=DEVICE).T, 1.0, eps)
    with pytest.raises(ValueError, match="logvar"):
        tb.distortion("gaussian_nll", z, z, None, eps, z.clone(), None, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalars_in_memory_equal_scalars_by_value(tb, dtype):
    """β, Δβ and t as 0-d device tensors (read by the kernels: graph-safe) or as numbers: the same bits."""
    gen = torch.Generator().manual_seed(5)
    B, K = 6, 3
    base = dict(z0=rand(B, K, dtype=dtype, gen=gen), g0=rand(B, K, dtype=dtype, gen=gen),
                d0=uniform(B, high=9.0, gen=gen), p=rand(B, K, dtype=dtype, gen=gen), z=rand(B, K, dtype=dtype, gen=gen),
                logw=rand(B, gen=gen), h0=torch.zeros(B, **F64), eps=uniform(B, low=0.01, high=0.2, gen=gen),
                g=rand(B, K, dtype=dtype, gen=gen), d=uniform(B, high=9.0, gen=gen), u=uniform(B, low=0.05, gen=gen),
                accept_stat=uniform(B, gen=gen), n_accept=torch.arange(B, device=DEVICE),
                n_diverge=torch.zeros(B, dtype=torch.int64, device=DEVICE))
    outs = []
    for beta, dbeta, t in ((17.25, 0.125, 9), (torch.tensor(17.25, **F64), torch.tensor(0.125, **F64),
                                               torch.tensor(9, device=DEVICE))):
        a = {k: v.clone() for k, v in base.items()}
        tb.leapfrog_begin(a["z0"], a["g0"], a["d0"], a["p"], a["z"], a["logw"], a["h0"], beta, dbeta, a["eps"])
        tb.leapfrog_step(a["z"], a["g"], a["p"], beta, a["eps"])
        tb.leapfrog_end(a["z"], a["g"], a["p"], beta, a["eps"])
        tb.metropolis(a["z0"], a["g0"], a["d0"], a["z"], a["g"], a["d"], a["p"], a["h0"], a["u"], beta, a["eps"],
                      a["accept_stat"], a["n_accept"], a["n_diverge"], 2, 0.65, t)
        outs.append(a)
    for key in base:
        assert torch.equal(outs[0][key], outs[1][key]), key
    with pytest.raises(TypeError, match="beta"):
        tb.leapfrog_step(base["z"], base["g"], base["p"], torch.tensor(1.0, device=DEVICE), base["eps"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_whole_run_matches_torch(tb, dtype):
    """rdfast.ais on the triton backend equals the same run on the torch reference."""
    import rdfast
    from rdfast import backends
    from rdfast.testing import linear_problem

    try:
        backends.get("triton", torch.device(DEVICE))
    except ValueError as exc:
        pytest.skip(f"the backend registry does not offer triton here yet ({exc})")
    problem = linear_problem(3, 7, n_items=3, logvar=-0.5, dtype=dtype, seed=1)
    x = problem.x.to(DEVICE)
    problem.decoder.to(DEVICE)
    schedule = rdfast.schedules.sigmoid(12, 5.0)
    runs = {name: rdfast.ais(problem.decoder, x, schedule, logvar=problem.logvar, n_chains=4,
                             leapfrog_steps=3, record=4, seed=0, backend=name)
            for name in ("torch", "triton")}
    a, b = runs["torch"], runs["triton"]
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for field in ("log_z", "distortion", "rate", "ess", "z", "log_w"):
        torch.testing.assert_close(getattr(b, field), getattr(a, field), rtol=tol, atol=tol, msg=field)
    torch.testing.assert_close(b.step_sizes.log_eps, a.step_sizes.log_eps, rtol=0, atol=0)
    assert torch.equal(b.divergences, a.divergences) and torch.equal(b.acceptance, a.acceptance)


COMPILE_FOR_SM90 = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from rdfast.kernels import distortion, leapfrog, metropolis, record

ROW_F64 = {"d", "d0", "logw", "h0", "eps", "u", "accept_stat", "prior_energy", "log_z", "dist", "ess", "beta_at",
           "dbeta_at"}
INT64 = {"n_accept", "n_diverge", "t_at"}
ADAPT = dict(EMA_DECAY=0.9, EPS_MIN=1e-4, EPS_MAX=0.5)
KERNELS = [  # (kernel, dtype T, constexprs): each kernel once, float64 where the lowering differs most
    (distortion.distortion_kernel, "fp32", dict(KIND=0, LOGVAR=2, BLOCK_ROWS=16, BLOCK_COLS=128)),
    (distortion.distortion_kernel, "fp64", dict(KIND=1, LOGVAR=0, BLOCK_ROWS=16, BLOCK_COLS=128)),
    (leapfrog.leapfrog_begin_kernel, "fp64", dict(HAS_PRIOR_ENERGY=False, HAS_PRIOR_GRAD=True, BETA_AT=True,
                                                  DBETA_AT=True, BLOCK_ROWS=64, BLOCK_COLS=32)),
    (leapfrog.leapfrog_kick_kernel, "fp32", dict(LAST=False, HAS_PRIOR_GRAD=False, BETA_AT=False, BLOCK_ROWS=64,
                                                 BLOCK_COLS=32)),
    (leapfrog.leapfrog_kick_kernel, "fp64", dict(LAST=True, HAS_PRIOR_GRAD=True, BETA_AT=True, BLOCK_ROWS=64,
                                                 BLOCK_COLS=32)),
    (metropolis.metropolis_kernel, "fp64", dict(HAS_PRIOR_ENERGY=False, ADAPT=True, CUMULATIVE=True, BETA_AT=True,
                                                T_AT=True, BLOCK_ROWS=64, BLOCK_COLS=32, **ADAPT)),
    (record.record_kernel, "fp64", dict(BLOCK_ITEMS=128, BLOCK_CHAINS=16)),
]


def signature(kernel, dtype, constexprs):
    sig = {}
    for param in kernel.params:
        name = param.name
        if name in constexprs:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            base = name[:-4]
            sig[name] = "*i64" if base in INT64 else "*fp64" if base in ROW_F64 else "*" + dtype
        else:
            sig[name] = param.annotation_type or "i32"
    return sig


for kernel, dtype, constexprs in KERNELS:
    src = ASTSource(fn=kernel, signature=signature(kernel, dtype, constexprs), constexprs=constexprs)
    triton.compile(src, target=GPUTarget("cuda", 90, 32))
print("compiled")
"""


@pytest.mark.skipif(DEVICE == "cuda", reason="the op tests above already run the compiled kernels")
def test_kernels_compile_for_cuda(tmp_path):
    """Without a GPU the tests above run the interpreter: check that the GPU compiler lowers every kernel."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(tmp_path), TRITON_DEFAULT_FP_FUSION="1")
    # cwd: a scratch folder, so the installed package is imported, not the source tree
    done = subprocess.run([sys.executable, "-c", COMPILE_FOR_SM90], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    if done.returncode and "ptxas" in done.stderr and "not found" in done.stderr.lower():
        pytest.skip("no CUDA assembler (ptxas) shipped with this Triton")
    assert done.returncode == 0 and "compiled" in done.stdout, done.stderr[-3000:]


def test_module_in_fresh_process(tmp_path):
    """Fallback when triton was imported (without the interpreter) before this module ran."""
    backend = importlib.import_module("rdfast.backends.triton")
    if backend._IMPORT_ERROR or not interpreter_blocked(backend):
        pytest.skip("the tests above ran in this process")
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                           "-k", "not in_fresh_process and not compile_for_cuda"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-5000:]
