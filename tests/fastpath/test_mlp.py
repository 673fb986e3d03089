"""The autograd-free MLP fast path (rdfast.fastpath.mlp) gives the generic Evaluator's d and ∇_z d."""
import warnings

import pytest
import torch
from torch import nn

import rdfast
from rdfast import backends
from rdfast.fastpath import Evaluator, MLPEvaluator, make_evaluator
from rdfast.sampling.distortions import resolve

ACTIVATIONS = {
    "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "sigmoid": nn.Sigmoid,
    "elu": lambda: nn.ELU(0.7), "softplus": lambda: nn.Softplus(2.0, 3.0), "identity": nn.Identity,
}
LOGVARS = {"gaussian_nll": -1.2, "bernoulli_nll": None, "squared_error": None}
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}
N, M, K, P = 3, 5, 4, 13


def _backend_names():
    return [name for name in ("torch", "cpu") if backends.available()[name]["available"]]


def _decoder(activation, out_activation, dtype, gen):
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    dec = nn.Sequential(nn.Linear(K, 19), activation(), nn.Linear(19, 11), activation(), nn.Linear(11, P),
                        out_activation())
    return dec.to(dtype)


def _both(dec, x, dist, backend_name):
    be = backends.get(backend_name, x.device)
    fast = make_evaluator(dec, x, M, dist, be)
    assert isinstance(fast, MLPEvaluator)
    return fast, Evaluator(dec, x, M, dist, be)


def _compare(fast, generic, z):
    d_fast, d_gen = torch.empty(z.shape[0], dtype=torch.float64), torch.empty(z.shape[0], dtype=torch.float64)
    g_fast, g_gen = torch.empty_like(z), torch.empty_like(z)
    for _ in range(2):  # the second call reuses every buffer
        fast(z, d_fast, g_fast)
        generic(z, d_gen, g_gen)
    tol = TOL[z.dtype]
    torch.testing.assert_close(d_fast, d_gen, rtol=1e-12 if z.dtype == torch.float64 else 1e-6, atol=1e-9)
    torch.testing.assert_close(g_fast, g_gen, **tol)
    assert not g_fast.requires_grad


@pytest.mark.parametrize("backend_name", _backend_names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", list(LOGVARS))
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_hidden_activation_matches_generic(act, kind, dtype, backend_name, gen):
    dec = _decoder(ACTIVATIONS[act], nn.Sigmoid if kind != "bernoulli_nll" else nn.Identity, dtype, gen)
    x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
    if kind == "bernoulli_nll":
        x = (x > 0.5).to(dtype)
    fast, generic = _both(dec, x, resolve(kind, LOGVARS[kind], x), backend_name)
    z = 2.0 * torch.randn(N * M, K, generator=gen, dtype=torch.float64).to(dtype)
    _compare(fast, generic, z)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_output_activation_matches_generic(act, dtype, gen):
    dec = _decoder(nn.Tanh, ACTIVATIONS[act], dtype, gen)
    x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
    logvar = torch.linspace(-2.0, 0.5, P, dtype=dtype)  # per-pixel
    fast, generic = _both(dec, x, resolve("gaussian_nll", logvar, x), "torch")
    _compare(fast, generic, torch.randn(N * M, K, generator=gen, dtype=torch.float64).to(dtype))


def test_linear_decoder_without_bias_and_image_shaped_data(gen):
    dec = nn.Sequential(nn.Linear(K, 12, bias=False)).double()
    x = torch.rand(N, 3, 4, generator=gen, dtype=torch.float64)
    fast, generic = _both(dec, x, resolve("squared_error", None, x), "torch")
    _compare(fast, generic, torch.randn(N * M, K, generator=gen, dtype=torch.float64))


class _Square(nn.Module):
    def forward(self, h):
        return h * h


def _not_plain():
    hooked = nn.Sequential(nn.Linear(K, P))
    hooked[0].register_forward_hook(lambda module, inputs, output: output * 2)
    return {
        "custom module": nn.Sequential(nn.Linear(K, P), _Square()),
        "activation first": nn.Sequential(nn.Tanh(), nn.Linear(K, P)),
        "two activations": nn.Sequential(nn.Linear(K, P), nn.Tanh(), nn.Sigmoid()),
        "negative leaky slope": nn.Sequential(nn.Linear(K, P), nn.LeakyReLU(-0.5)),
        "hook": hooked,
        "wrong output width": nn.Sequential(nn.Linear(K, P + 1)),
        "float64 weights": nn.Sequential(nn.Linear(K, P)).double(),
        "not a module": lambda z: z.sum(1, keepdim=True).expand(-1, P),
    }


@pytest.mark.parametrize("case", list(_not_plain()))
def test_other_decoders_take_the_generic_path(case):
    """Silently: none of these is a failure to capture (tests/fastpath/test_capture.py has those)."""
    x = torch.rand(N, P)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = make_evaluator(_not_plain()[case], x, M, resolve("squared_error", None, x), backends.get("torch", x.device))
    assert type(ev) is Evaluator


def test_custom_distortion_and_decoder_logvar_take_the_generic_path():
    x = torch.rand(N, P)
    dec = nn.Sequential(nn.Linear(K, P))
    be = backends.get("torch", x.device)
    custom = resolve(lambda x, xh: ((x - xh) ** 2).sum(1), None, x)
    assert type(make_evaluator(dec, x, M, custom, be)) is Evaluator
    assert type(make_evaluator(dec, x, M, resolve("gaussian_nll", None, x), be)) is Evaluator


@pytest.mark.parametrize("backend_name", _backend_names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_whole_run_matches_generic_path(dtype, backend_name, gen):
    dec = _decoder(nn.Tanh, nn.Sigmoid, dtype, gen)
    x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
    kw = dict(distortion="gaussian_nll", logvar=-1.0, n_chains=M, leapfrog_steps=4, record=5, seed=3,
              backend=backend_name, latent_dim=K)
    sched = rdfast.schedules.sigmoid(30, beta_max=5.0)
    fast = rdfast.ais(dec, x, sched, **kw)
    generic = rdfast.ais(lambda z: dec(z), x, sched, **kw)  # a plain callable: the autograd path
    tol = TOL[dtype]
    torch.testing.assert_close(fast.log_w, generic.log_w, **tol)
    torch.testing.assert_close(fast.z, generic.z, **tol)
    torch.testing.assert_close(fast.log_z, generic.log_z, **tol)
    assert torch.equal(fast.acceptance, generic.acceptance)


@pytest.mark.skipif(not backends.available()["cpu"]["available"], reason="rdfast._C is not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("depth", [0, 1, 2])
@pytest.mark.parametrize("act,kind", [("tanh", "gaussian_nll"), ("elu", "bernoulli_nll"), ("relu", "squared_error"),
                                      ("leaky_relu", "gaussian_nll"), ("sigmoid", "bernoulli_nll")])
def test_compiled_program_equals_the_torch_op_steps(act, kind, depth, dtype, gen):
    """MLPEvaluator's one-call program (BLAS gemm and the fused kernels in C++) against the same
    evaluator's torch-op steps, and the generic path; odd sizes, trunks of 0 to 2 layers."""
    if not rdfast.fastpath.cpu_kernels.blas_gemm(dtype):
        pytest.skip("torch's BLAS is not reachable here: the evaluator takes its torch-op steps")
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    widths = [K, 19, 11][:depth + 1] + [P]
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Linear(a, b)] + ([ACTIVATIONS[act]()] if i < depth else [])
    dec = nn.Sequential(*layers).to(dtype)
    x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
    if kind == "bernoulli_nll":
        x = (x > 0.5).to(dtype)
    dist = resolve(kind, LOGVARS[kind], x)
    fast, generic = _both(dec, x, dist, "cpu")
    assert fast.program is not None
    z = torch.randn(N * M, K, generator=gen, dtype=torch.float64).to(dtype)
    _compare(fast, generic, z)
    d_program, g_program = torch.empty(N * M, dtype=torch.float64), torch.empty_like(z)
    fast(z, d_program, g_program)
    fast.program = None  # the same evaluator's torch-op steps
    d_steps, g_steps = torch.empty(N * M, dtype=torch.float64), torch.empty_like(z)
    fast(z, d_steps, g_steps)
    torch.testing.assert_close(d_program, d_steps, rtol=1e-13 if dtype == torch.float64 else 1e-6, atol=0)
    torch.testing.assert_close(g_program, g_steps, **TOL[dtype])


@pytest.mark.skipif(not backends.available()["cpu"]["available"], reason="rdfast._C is not built")
def test_compiled_program_is_not_given_buffers_it_cannot_take(gen):
    """Non-contiguous or mis-shaped buffers take the torch-op steps (the program reads raw addresses)."""
    dec = _decoder(ACTIVATIONS["tanh"], nn.Sigmoid, torch.float64, gen)
    x = torch.rand(N, P, generator=gen, dtype=torch.float64)
    fast = make_evaluator(dec, x, M, resolve("gaussian_nll", -1.0, x), backends.get("cpu", x.device))
    z = torch.randn(N * M, K, generator=gen, dtype=torch.float64)
    d, g = torch.empty(N * M, dtype=torch.float64), torch.empty_like(z)
    assert fast._program_takes(z, d, g)
    for bad in (dict(z=z.t().contiguous().t()), dict(z=z[:-1]), dict(g=torch.empty(K, N * M).t()),
                dict(d=torch.empty(N * M, dtype=torch.float32)), dict(z=z.float())):
        args = {"z": z, "d": d, "g": g, **bad}
        assert not fast._program_takes(args["z"], args["d"], args["g"])
