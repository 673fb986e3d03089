"""The compiled CPU kernels of the MLP fast path (rdfast.fastpath.cpu_kernels) and of the keyed RNG
(rdfast.backends.native.philox_words)."""
import math

import pytest
import torch

from rdfast.fastpath import cpu_kernels
from rdfast.sampling import rng
from rdfast.backends import native, reference
from rdfast.fastpath.cpu_kernels import Activation

pytestmark = pytest.mark.skipif(not cpu_kernels.available(), reason="rdfast._C is not built")

TOL = {torch.float32: dict(rtol=2e-6, atol=2e-7), torch.float64: dict(rtol=1e-14, atol=1e-15)}


@pytest.mark.parametrize("seed", [0, 6, 123456789012345, (1 << 62) - 1])
@pytest.mark.parametrize("n_blocks", [1, 3])
def test_philox_words_equal_the_reference(seed, n_blocks):
    items = torch.tensor([0, 1, 7, 2**31 + 5, 2**33 + 9])
    for step, stream in ((0, 0), (5, 1), (2**30 + 3, 3), (2**40 + 7, 2)):
        ref = rng.philox(seed, *rng._counters(items, 6, n_blocks, step, stream))
        for key in (step, torch.tensor(step)):  # by value, and read from memory by the kernel
            words = native.philox_words(seed, items, 6, n_blocks, key, stream)
            for w, r in zip(words, ref):
                assert torch.equal(w, r.expand(items.numel(), 6, n_blocks))


def test_normals_and_uniforms_are_bit_identical_to_the_torch_path(monkeypatch):
    items = torch.arange(3, 40)
    fast = [rng.normal(9, items, 16, 10, 7, rng.STREAM_MOMENTUM), rng.normal(9, items, 16, 2, 0, rng.STREAM_INIT),
            rng.uniform(9, items, 16, 7, rng.STREAM_ACCEPT)]
    monkeypatch.setattr(rng, "_compiled", lambda device_type: False)
    slow = [rng.normal(9, items, 16, 10, 7, rng.STREAM_MOMENTUM), rng.normal(9, items, 16, 2, 0, rng.STREAM_INIT),
            rng.uniform(9, items, 16, 7, rng.STREAM_ACCEPT)]
    for f, s in zip(fast, slow):
        assert torch.equal(f, s)


ACTS = {
    Activation.IDENTITY: lambda a: a,
    Activation.TANH: torch.tanh,
    Activation.SIGMOID: torch.sigmoid,
    Activation.RELU: torch.relu,
    Activation.LEAKY_RELU: lambda a: torch.nn.functional.leaky_relu(a, 0.2),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("code", list(ACTS))
def test_bias_act(code, dtype, gen):
    a = (6 * torch.randn(37, 29, generator=gen, dtype=torch.float64)).to(dtype)  # odd sizes: vector tails
    a[0, :4] = torch.tensor([0.0, 1e-30, -1e-8, 30.0], dtype=dtype)
    bias = torch.randn(29, generator=gen, dtype=torch.float64).to(dtype)
    out = a.clone()
    cpu_kernels.bias_act(code, 0.2, out, bias)()
    torch.testing.assert_close(out, ACTS[code](a + bias), **TOL[dtype])


def test_activations_pass_nan_through():
    for code in ACTS:
        a = torch.tensor([[float("nan"), 1.0]])
        cpu_kernels.bias_act(code, 0.2, a, torch.zeros(2))()
        assert torch.isnan(a[0, 0]), code


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,logvar", [("gaussian_nll", "scalar"), ("gaussian_nll", "per_pixel"),
                                         ("squared_error", None)])
@pytest.mark.parametrize("code", cpu_kernels.OUTPUT_ACTIVATIONS)
def test_mlp_output_equals_activation_then_distortion_then_derivative(code, kind, logvar, dtype, gen):
    N, M, P = 3, 4, 37
    x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
    pre = torch.randn(N * M, P, generator=gen, dtype=torch.float64).to(dtype)
    bias = torch.randn(P, generator=gen, dtype=torch.float64).to(dtype)
    lv = {None: None, "scalar": torch.tensor([math.log(0.03)], dtype=dtype),
          "per_pixel": torch.linspace(-3.0, 1.0, P, dtype=dtype)}[logvar]
    d, delta = torch.empty(N * M, dtype=torch.float64), pre.clone()
    cpu_kernels.mlp_output(kind, code, delta, bias, x, lv, d, M)()

    xhat = ACTS[code](pre + bias)
    d_ref, g_ref = torch.empty_like(d), torch.empty_like(xhat)
    reference.distortion(kind, x, xhat, lv, d_ref, g_ref, None, M)
    deriv = {Activation.IDENTITY: torch.ones_like(xhat), Activation.TANH: 1 - xhat * xhat,
             Activation.SIGMOID: xhat * (1 - xhat)}[code]
    torch.testing.assert_close(d, d_ref, rtol=1e-6 if dtype == torch.float32 else 1e-13, atol=0)
    ref = g_ref * deriv  # 1 − x̂² near x̂ = ±1 magnifies x̂'s last-ulp differences: absolute scale
    tol = TOL[dtype]
    torch.testing.assert_close(delta, ref, rtol=tol["rtol"], atol=4 * tol["rtol"] * float(ref.abs().max()))


def test_results_do_not_depend_on_the_thread_count(gen):
    """Rows are independent, so the parallel kernels give bit-identical results on 1 or 2 threads."""
    N, M, P = 20, 16, 784  # 250,880 elements: above the parallel thresholds
    x = torch.rand(N, P, generator=gen)
    pre = torch.randn(N * M, P, generator=gen)
    bias, lv = torch.randn(P, generator=gen), torch.tensor([math.log(0.03)])
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            h, delta, d = pre.clone(), pre.clone(), torch.empty(N * M, dtype=torch.float64)
            cpu_kernels.bias_act(Activation.TANH, 0.0, h, bias)()
            cpu_kernels.mlp_output("gaussian_nll", Activation.SIGMOID, delta, bias, x, lv, d, M)()
            out.append((h, delta, d))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*out):
        assert torch.equal(one, two)
