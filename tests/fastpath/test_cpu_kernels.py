"""The compiled CPU kernels of the MLP fast path (rdfast.fastpath.cpu_kernels) and of the keyed RNG
(rdfast.backends.native.philox_words and philox_normals)."""
import pytest
import torch

import rdfast
from rdfast.backends import cpu as native_cpu
from rdfast.backends import native
from rdfast.fastpath import cpu_kernels
from rdfast.fastpath.cpu_kernels import Activation
from rdfast.sampling import rng
from rdfast.testing import assert_matches_reference, linear_problem

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


def test_uniforms_are_bit_identical_to_the_torch_path(monkeypatch):
    """rng.uniform on compiled words, and the compiled prepared draw (uniform_into, with and without
    the second uniform), against the torch ops, at two values of a step tensor read at each draw."""
    items = torch.tensor([3, 5, 2**32 + 7, 40])
    keys, step = rng.Keys(9, items, 16), torch.tensor(7)
    first, second, alone = torch.empty(64, dtype=torch.float64), torch.empty(64, dtype=torch.float64), \
        torch.empty(64, dtype=torch.float64)
    draw_pair, draw_one = keys.uniform_into(step, rng.STREAM_ACCEPT, first, second), \
        keys.uniform_into(step, rng.STREAM_ACCEPT, alone)
    got = []
    for k in (7, 2**33 + 1):
        step.fill_(k)
        draw_pair()
        draw_one()
        got.append((rng.uniform(9, items, 16, k, rng.STREAM_ACCEPT), first.clone(), second.clone(), alone.clone()))
    monkeypatch.setattr(rng, "_compiled", lambda device_type: False)
    for k, (words_compiled, u, v, w) in zip((7, 2**33 + 1), got):
        ref_u, ref_v = rng.uniform_pair(9, items, 16, k, rng.STREAM_ACCEPT)
        for t in (words_compiled, u, w):
            assert torch.equal(t, ref_u)
        assert torch.equal(v, ref_v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prepared_normals_equal_normal(dtype):
    """Keys.normal_into (prepared once) writes rng.normal's numbers at the step tensor's value at each draw."""
    keys, step = rng.Keys(4, torch.arange(5, 12), 3), torch.tensor(2)
    out = torch.empty(21, 6, dtype=dtype)
    draw = keys.normal_into(step, rng.STREAM_MOMENTUM, out)
    for k in (2, 3, 2**31 + 5):
        step.fill_(k)
        draw()
        assert torch.equal(out, keys.normal(k, rng.STREAM_MOMENTUM, 6, dtype))


@pytest.mark.parametrize("dim", [1, 2, 3, 4, 10, 37])
def test_normals_equal_their_twin(dim):
    """The compiled Box–Muller (own log and sin/cos polynomials in double) against the torch ops of
    rng.normal_twin on the same words: float64 within 4e-15 (torch's own log/cos/sin are ~1 ulp,
    and 2π·u rounds once); float32 the same bits here (a float64 difference of 4e-15 changes the
    rounding to float32 with probability ~1e-8 per value)."""
    items = torch.arange(3, 2003)  # 32,000 rows: 1.2 million normals at dim 37
    for dtype in (torch.float64, torch.float32):
        fast = rng.normal(9, items, 16, dim, 7, rng.STREAM_MOMENTUM, dtype)
        twin = rng.normal_twin(9, items, 16, dim, 7, rng.STREAM_MOMENTUM, dtype)
        assert fast.dtype == dtype and fast.shape == (items.numel() * 16, dim) and fast.is_contiguous()
        if dtype == torch.float64:
            assert (fast - twin).abs().max() <= 4e-15
        else:
            assert torch.equal(fast, twin)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("code", list(Activation))
def test_bias_act(code, dtype, gen):
    a = (6 * torch.randn(37, 29, generator=gen, dtype=torch.float64)).to(dtype)  # odd sizes: vector tails
    a[0, :4] = torch.tensor([0.0, 1e-30, -1e-8, 30.0], dtype=dtype)
    bias = torch.randn(29, generator=gen, dtype=torch.float64).to(dtype)
    out = a.clone()
    cpu_kernels.bias_act(code, 0.2, out, bias)()
    torch.testing.assert_close(out, cpu_kernels.bias_act_twin(code, 0.2, a, bias), **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("code", list(Activation))
def test_act_backward(code, dtype, gen):
    """δ ⊙ φ'(a) from h = φ(a) against torch's backward ops, with a at 0, ±tiny and ±30 and δ at
    inf and NaN (odd sizes: vector tails; 300 rows: the OpenMP-parallel loop). A NaN h is not
    compared: d is then NaN and the proposal rejected (torch's vector and scalar ELU kernels differ there)."""
    for rows in (37, 300):
        a = (6 * torch.randn(rows, 29, generator=gen, dtype=torch.float64)).to(dtype)
        a[0, :5] = torch.tensor([0.0, 1e-30, -1e-8, 30.0, -30.0], dtype=dtype)
        h = cpu_kernels.activation_twin(code, 0.2, a)
        delta = torch.randn(rows, 29, generator=gen, dtype=torch.float64).to(dtype)
        delta[1, :2] = torch.tensor([float("inf"), float("nan")], dtype=dtype)
        out = delta.clone()
        cpu_kernels.act_backward(code, 0.2, out, h)()
        torch.testing.assert_close(out, cpu_kernels.act_backward_twin(code, 0.2, delta, h), equal_nan=True, **TOL[dtype])


def test_elu_expm1_is_within_3_ulp_near_zero():
    """ELU's e^a − 1 in float32 (vecmath::expm1_f32) over a dense sweep around its two branches,
    against float64: relative error at most 3·2⁻²³."""
    a = torch.cat([torch.linspace(-3.0, 0.0, 200_001), -torch.logspace(-30, 0, 20_001)]).float()
    out = a.clone().reshape(1, -1)  # one row
    cpu_kernels.bias_act(Activation.ELU, 1.0, out, torch.zeros(a.numel()))()
    exact = torch.expm1(a.double())
    assert ((out[0].double() - exact).abs() <= 3 * 2.0 ** -23 * exact.abs()).all()


def test_activations_pass_nan_through():
    for code in Activation:
        a = torch.tensor([[float("nan"), 1.0]])
        cpu_kernels.bias_act(code, 0.2, a, torch.zeros(2))()
        assert torch.isnan(a[0, 0]), code


EXTREME_LOGITS = [80.0, -80.0, 100.0, -100.0, 20.5, -20.5, 19.5, 0.0]


def _output_inputs(kind, logvar, dtype, gen, N=3, M=5, P=37):
    """x [N, P], pre-activations [N·M, P] (extreme logits in the first row, with zero bias there),
    bias [P] and the log-variance, in float64."""
    x = torch.rand(N, P, generator=gen, dtype=torch.float64)
    if kind == "bernoulli_nll":
        x[:, ::2] = (x[:, ::2] > 0.5).double()  # binary pixels, and fractions
    pre = 3 * torch.randn(N * M, P, generator=gen, dtype=torch.float64)
    bias = torch.randn(P, generator=gen, dtype=torch.float64)
    n = len(EXTREME_LOGITS)
    pre[0, :n], bias[:n] = torch.tensor(EXTREME_LOGITS), 0.0
    lv = {None: None, "scalar": torch.tensor([-3.5], dtype=torch.float64),
          "per_pixel": torch.linspace(-3.0, 1.0, P, dtype=torch.float64)}[logvar]
    return x, pre, bias, lv


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,logvar", [("gaussian_nll", "scalar"), ("gaussian_nll", "per_pixel"),
                                         ("squared_error", None), ("bernoulli_nll", None)])
@pytest.mark.parametrize("code", cpu_kernels.OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (0.5, 0.5)])
def test_mlp_output_equals_its_twin(code, kind, logvar, scale, shift, dtype, gen):
    """The fused output kernel against its torch twin (activation, output map, the reference
    distortion, then s·φ'), with extreme logits (±80, ±100, either side of softplus's threshold)
    and odd sizes, by rdfast.testing's rule: within twice the twin's own float32 error."""
    x, pre, bias, lv = _output_inputs(kind, logvar, dtype, gen)
    M = pre.shape[0] // x.shape[0]
    cast = [None if t is None else t.to(dtype) for t in (x, pre, bias, lv)]
    d, delta = torch.empty(pre.shape[0], dtype=torch.float64), cast[1].clone()
    cpu_kernels.mlp_output(kind, code, delta, cast[2], cast[0], cast[3], d, M, scale, shift)()
    d_ref, delta_ref = cpu_kernels.mlp_output_twin(kind, code, cast[1], cast[2], cast[0], cast[3], M, scale, shift)
    d_64, delta_64 = cpu_kernels.mlp_output_twin(kind, code, pre, bias, x, lv, M, scale, shift)
    assert_matches_reference("d", d, d_ref, d_64, dtype)
    if code == Activation.TANH and dtype == torch.float32:
        # 1 − h² near h = ±1 magnifies the last bits of the kernel's tanh (1.5 ulp, torch's 1): absolute scale
        torch.testing.assert_close(delta.double(), delta_64, rtol=0, atol=1e-5 * float(delta_64.abs().max()))
    else:
        assert_matches_reference("delta", delta, delta_ref, delta_64, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_bernoulli_at_extreme_logits_is_exact_where_it_saturates(dtype):
    """softplus(ℓ) − xℓ and σ(ℓ) − x at ℓ = ±80, ±100: no overflow, the saturated values."""
    logits = torch.tensor([[80.0, -80.0, 100.0, -100.0]], dtype=dtype)
    for xv in (0.0, 1.0):
        x = torch.full((1, 4), xv, dtype=dtype)
        d, delta = torch.empty(1, dtype=torch.float64), logits.clone()
        cpu_kernels.mlp_output("bernoulli_nll", Activation.IDENTITY, delta, torch.zeros(4, dtype=dtype), x, None, d,
                               1)()
        want = (torch.tensor([80.0, 0.0, 100.0, 0.0]) - xv * torch.tensor([80.0, -80.0, 100.0, -100.0])).sum()
        assert abs(float(d) - float(want)) < 1e-6
        grad = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype) - xv
        torch.testing.assert_close(delta[0], grad, rtol=0, atol=4e-35)


def _at_threads(n: int, fn):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn()
    finally:
        torch.set_num_threads(threads)


def test_results_do_not_depend_on_the_thread_count(gen):
    """Rows are independent, so the parallel kernels give bit-identical float32 and float64
    results on 1 or 2 threads (sizes above every parallel threshold)."""
    N, M, P = 20, 16, 784
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
        pre = torch.randn(N * M, P, generator=gen, dtype=torch.float64).to(dtype)
        bias, lv = torch.randn(P, generator=gen, dtype=torch.float64).to(dtype), torch.tensor([-3.5], dtype=dtype)

        def run():
            h, delta, d = pre.clone(), pre.clone(), torch.empty(N * M, dtype=torch.float64)
            cpu_kernels.bias_act(Activation.ELU, 1.0, h, bias)()
            cpu_kernels.mlp_output("bernoulli_nll", Activation.IDENTITY, delta, bias, x, None, d, M)()
            back = pre.clone()
            cpu_kernels.act_backward(Activation.ELU, 1.0, back, h)()
            out = [h, delta, d, back, rng.normal(3, torch.arange(N), M, P, 5, rng.STREAM_MOMENTUM, dtype)]
            for kind, logvar in (("gaussian_nll", lv), ("bernoulli_nll", None), ("squared_error", None)):
                d2, grad = torch.empty(N * M, dtype=torch.float64), torch.empty_like(pre)
                native_cpu.distortion(kind, x, pre, logvar, d2, grad, None, M)
                out += [d2, grad]
            return out
        for one, two in zip(_at_threads(1, run), _at_threads(2, run)):
            assert torch.equal(one, two)


def test_whole_float64_run_does_not_depend_on_the_thread_count():
    """With a row-independent decoder (no BLAS) a float64 run is bit-identical on 1 or 2 threads."""
    pr = linear_problem(6, 800, 20, logvar=-1.0, seed=2, rowwise=True)
    kw = dict(distortion="gaussian_nll", logvar=pr.logvar, n_chains=16, leapfrog_steps=3, record=4, seed=5,
              backend="cpu", metric="diagonal", jitter=0.3)
    sched = rdfast.schedules.sigmoid(8, beta_max=2.0)
    one, two = (_at_threads(n, lambda: rdfast.ais(pr.decoder, pr.x, sched, **kw)) for n in (1, 2))
    for name in ("log_z", "distortion", "z", "log_w", "acceptance"):
        assert torch.equal(getattr(one, name), getattr(two, name)), name
