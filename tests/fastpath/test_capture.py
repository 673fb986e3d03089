"""Decoders captured by torch.fx (rdfast.fastpath.capture) take the MLP fast path and give the
generic path's d and ∇_z d, to the generic path's own rounding error (rdfast.testing's rule);
decoders that are not MLPs take the generic path silently, and decoders that cannot be traced take
it with one warning, to the same numbers."""
import copy
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import rdfast
from rdfast import backends
from rdfast.apps.models import VAEDecoder
from rdfast.fastpath import Evaluator, MLPEvaluator, make_evaluator
from rdfast.sampling.distortions import resolve
from rdfast.testing import assert_matches_reference

N, M, K, P = 3, 5, 4, 13


def _backend_names():
    return [name for name in ("torch", "cpu") if backends.available()[name]["available"]]


class VAE50(nn.Module):
    """The VAE-50 layout (ELU, Bernoulli logits), small: an encoder and a ``decode`` method."""

    def __init__(self, hidden=9):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(P, hidden), nn.Linear(hidden, 2 * K)
        self.fc3, self.fc4, self.fc5 = nn.Linear(K, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, P)

    def encode(self, x):
        return self.fc2(F.elu(self.fc1(x))).chunk(2, dim=1)

    def decode(self, z):
        h = F.elu(self.fc3(z))
        h = F.elu(self.fc4(h))
        return self.fc5(h)


class _Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(K, 11), nn.Linear(11, 7)

    def forward(self, h):
        return F.leaky_relu(self.second(torch.tanh(self.first(h)) * 3.0), negative_slope=0.1)


class MapsAndReshape(nn.Module):
    """Affine maps on z and after the output, a nested module, dropout (in eval mode), and a
    reshape to the data's shape."""

    def __init__(self):
        super().__init__()
        self.body, self.drop, self.out = _Body(), nn.Dropout(0.2), nn.Linear(7, P)

    def forward(self, z):
        h = self.drop(self.body(2.0 * z - 0.5))
        return (0.5 * torch.tanh(self.out(h)) + 0.5).view(z.shape[0], 1, P)


class Functional(nn.Module):
    """F.linear on its own parameters, a tensor method and softplus; a subclass of nn.Linear."""

    class Dense(nn.Linear):
        pass

    def __init__(self):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(8, K) / 2), nn.Parameter(torch.randn(8))
        self.dense = self.Dense(8, 8)
        self.w2 = nn.Parameter(torch.randn(P, 8) / 3)

    def forward(self, z):
        h = F.linear(z, self.w1, self.b1).relu()
        h = F.softplus(self.dense(h), beta=2.0)
        return F.linear(h, self.w2) / 4.0


class TwoHeads(nn.Module):
    """(mean, log-variance) from two dense heads on a shared trunk."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(K, 10), nn.Tanh())
        self.mean, self.logvar = nn.Linear(10, P), nn.Linear(10, P)

    def forward(self, z):
        h = self.trunk(z)
        return torch.sigmoid(self.mean(h)), 0.5 * self.logvar(h) - 1.0


class ChunkedHeads(nn.Module):
    """(mean, log-variance) as the two halves of one dense layer."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(K, 10), nn.ELU(), nn.Linear(10, 2 * P))

    def forward(self, z):
        mean, logvar = self.net(z).chunk(2, dim=1)
        return torch.sigmoid(mean), logvar


# form: (module factory, decoder of the module, distortion, logvar of the module or None, event shape)
FORMS = {
    "sequential": (lambda: nn.Sequential(nn.Linear(K, 9), nn.Tanh(), nn.Linear(9, P), nn.Sigmoid()),
                   lambda m: m, "gaussian_nll", lambda m: -1.0, (P,)),
    "linear": (lambda: nn.Linear(K, P), lambda m: m, "squared_error", None, (P,)),
    "sequential-unflatten": (lambda: nn.Sequential(nn.Linear(K, 9), nn.ELU(), nn.Linear(9, P), nn.Unflatten(1, (1, P))),
                             lambda m: m, "bernoulli_nll", None, (1, P)),
    "vae-decoder": (lambda: VAEDecoder(K, P, hidden=11), lambda m: m, "gaussian_nll", lambda m: m.logvar, (P,)),
    "decode-method": (VAE50, lambda m: m.decode, "bernoulli_nll", None, (P,)),
    "maps-and-reshape": (MapsAndReshape, lambda m: m, "squared_error", None, (1, P)),
    "functional": (Functional, lambda m: m, "gaussian_nll", lambda m: torch.linspace(-2.0, 0.5, P), (P,)),
    "two-heads": (TwoHeads, lambda m: m, "gaussian_nll", None, (P,)),
    "chunked-heads": (ChunkedHeads, lambda m: m, "gaussian_nll", None, (P,)),
}


def _problem(form, dtype, gen):
    """(decoder, x, resolved distortion) of ``form`` in ``dtype``, weights from one float64 draw."""
    make, decoder_of, kind, logvar_of, event = FORMS[form]
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    module = make().double().eval()
    module.requires_grad_(False)
    module = copy.deepcopy(module).to(dtype)
    x = torch.rand(N, *event, generator=gen, dtype=torch.float64)
    if kind == "bernoulli_nll":
        x = (x > 0.5).double()
    x = x.to(dtype)
    logvar = None if logvar_of is None else logvar_of(module)
    return decoder_of(module), x, resolve(kind, logvar, x)


def _evaluate(evaluator, z):
    d, g = torch.empty(z.shape[0], dtype=torch.float64), torch.empty_like(z)
    for _ in range(2):  # the second call reuses every buffer
        evaluator(z, d, g)
    return d, g


@pytest.mark.parametrize("backend_name", _backend_names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("form", list(FORMS))
def test_captured_decoder_matches_the_generic_path(form, dtype, backend_name, gen):
    """|fast − generic₆₄| within twice the generic path's own error in float32 (plus 1e-6 relative),
    1e-12 relative in float64."""
    state = gen.get_state()
    decoder, x, dist = _problem(form, dtype, gen)
    gen.set_state(state)
    decoder64, x64, dist64 = _problem(form, torch.float64, gen)
    z64 = 1.5 * torch.randn(N * M, K, generator=gen, dtype=torch.float64)
    z = z64.to(dtype)
    be, be64 = backends.get(backend_name, x.device), backends.get(backend_name, x64.device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = make_evaluator(decoder, x, M, dist, be)
    assert isinstance(fast, MLPEvaluator)
    out = _evaluate(fast, z)
    ref = _evaluate(Evaluator(decoder, x, M, dist, be), z)
    ref64 = _evaluate(Evaluator(decoder64, x64, M, dist64, be64), z64)
    for name, o, r, r64 in zip(("d", "grad"), out, ref, ref64):
        assert_matches_reference(f"{form} {name}", o, r, r64, dtype)


def test_a_module_held_in_a_closure_is_captured(gen):
    inner = nn.Sequential(nn.Linear(K, 9), nn.Tanh(), nn.Linear(9, P)).double()

    class Outer(nn.Module):
        def forward(self, z):
            return torch.sigmoid(inner(z))

    x = torch.rand(N, P, generator=gen, dtype=torch.float64)
    dist, be = resolve("squared_error", None, x), backends.get("torch", x.device)
    fast = make_evaluator(Outer(), x, M, dist, be)
    assert isinstance(fast, MLPEvaluator)
    z = torch.randn(N * M, K, generator=gen, dtype=torch.float64)
    ref = _evaluate(Evaluator(Outer(), x, M, dist, be), z)
    for name, o, r in zip(("d", "grad"), _evaluate(fast, z), ref):
        assert_matches_reference(name, o, r, r, torch.float64)


class Branchy(nn.Module):
    """An MLP behind data-dependent control flow, which torch.fx cannot trace."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(K, 9), nn.Tanh(), nn.Linear(9, P))

    def forward(self, z):
        if z.abs().max() > 1e6:
            z = z.clamp(-1e6, 1e6)
        return self.net(z)


class Drifting(nn.Module):
    """Python state that tracing bakes in: the traced graph differs from the module's next call."""

    def __init__(self):
        super().__init__()
        self.lin, self.calls = nn.Linear(K, P), 0

    def forward(self, z):
        self.calls += 1
        return self.lin(z) * float(self.calls)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_untraceable_decoder_warns_once_and_gives_the_generic_numbers(dtype, gen):
    dec = Branchy().to(dtype)
    x = torch.rand(N, P, generator=gen, dtype=torch.float64).to(dtype)
    dist, be = resolve("squared_error", None, x), backends.get("cpu" if "cpu" in _backend_names() else "torch", x.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = make_evaluator(dec, x, M, dist, be)
        make_evaluator(dec, x, M, dist, be)
    assert [str(w.message) for w in caught] == [str(caught[0].message)]
    assert "Branchy: not on the fast path (torch.fx cannot trace it: TraceError" in str(caught[0].message)
    assert type(first) is Evaluator
    z = torch.randn(N * M, K, generator=gen, dtype=torch.float64).to(dtype)
    for fast, generic in zip(_evaluate(first, z), _evaluate(Evaluator(dec, x, M, dist, be), z)):
        assert torch.equal(fast, generic)


def test_a_graph_that_differs_from_its_module_on_the_probe_warns():
    x = torch.rand(N, P)
    with pytest.warns(UserWarning, match="Drifting: not on the fast path .*differs from it on probe rows"):
        ev = make_evaluator(Drifting(), x, M, resolve("squared_error", None, x), backends.get("torch", x.device))
    assert type(ev) is Evaluator


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(K, P), nn.Linear(P, P)

    def forward(self, z):
        h = self.a(z)
        return self.b(h) + h


class SideEffect(nn.Module):
    """An in-place activation whose result is not used: the graph's chain skips it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(K, 9), nn.Linear(9, P)

    def forward(self, z):
        h = self.a(z)
        torch.relu_(h)
        return self.b(h)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(K, P), nn.Linear(K, P)

    def forward(self, z):
        return self.a(z) * torch.sigmoid(self.b(z))


NOT_MLPS = {
    "residual": Residual,
    "side effect": SideEffect,
    "transposed convolution": lambda: nn.Sequential(nn.Unflatten(1, (K, 1, 1)), nn.ConvTranspose2d(K, 1, 4),
                                                    nn.Flatten(), nn.Linear(16, P)),
    "batch norm": lambda: nn.Sequential(nn.Linear(K, 9), nn.BatchNorm1d(9), nn.Linear(9, P)).eval(),
    "dropout in training": lambda: nn.Sequential(nn.Linear(K, 9), nn.Dropout(0.1), nn.Linear(9, P)),
    "product of two tensors": Gated,
    "gated linear unit": lambda: nn.Sequential(nn.Linear(K, 2 * P), nn.GLU()),
}


@pytest.mark.parametrize("case", list(NOT_MLPS))
def test_decoders_that_are_not_mlps_take_the_generic_path_silently(case, gen):
    torch.manual_seed(0)
    dec = NOT_MLPS[case]()
    x = torch.rand(N, P, generator=gen)
    dist, be = resolve("squared_error", None, x), backends.get("torch", x.device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = make_evaluator(dec, x, M, dist, be)
    assert type(ev) is Evaluator
    z = torch.randn(N * M, K, generator=gen)
    torch.manual_seed(1)  # the same dropout masks
    got = _evaluate(ev, z)
    torch.manual_seed(1)
    for g, want in zip(got, _evaluate(Evaluator(dec, x, M, dist, be), z)):
        assert torch.equal(g, want)


def test_an_output_in_another_layout_than_the_data_takes_the_generic_path():
    """[rows, 2, P/2]-shaped data and a decoder writing [rows, P/2, 2]: the generic path names it."""
    x = torch.rand(N, 2, 7)
    dec = nn.Sequential(nn.Linear(K, 14), nn.Unflatten(1, (7, 2)))
    ev = make_evaluator(dec, x, M, resolve("squared_error", None, x), backends.get("torch", x.device))
    assert type(ev) is Evaluator
    with pytest.raises(ValueError, match=r"decoder: output has shape \(15, 7, 2\)"):
        _evaluate(ev, torch.randn(N * M, K))


def test_heads_must_match_the_distortion():
    """A (mean, logvar) decoder with a fixed logvar (or a single head without one) takes the
    generic path, which names the mismatch."""
    x = torch.rand(N, P)
    be = backends.get("torch", x.device)
    two = make_evaluator(TwoHeads(), x, M, resolve("gaussian_nll", -1.0, x), be)
    one = make_evaluator(nn.Linear(K, P), x, M, resolve("gaussian_nll", None, x), be)
    assert type(two) is Evaluator and type(one) is Evaluator
    with pytest.raises(ValueError, match="decoder: returned a tuple"):
        _evaluate(two, torch.randn(N * M, K))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_whole_run_with_a_decode_method_matches_the_generic_path(dtype, gen):
    torch.manual_seed(1)
    model = VAE50().to(dtype).eval()
    x = (torch.rand(N, P, generator=gen) > 0.5).to(dtype)
    kw = dict(distortion="bernoulli_nll", n_chains=M, leapfrog_steps=4, record=5, seed=3, latent_dim=K)
    sched = rdfast.schedules.sigmoid(30, beta_max=1.0)
    fast = rdfast.ais(model.decode, x, sched, **kw)
    generic = rdfast.ais(lambda z: model.decode(z), x, sched, **kw)  # a plain callable: the autograd path
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.log_w, generic.log_w, **tol)
    torch.testing.assert_close(fast.z, generic.z, **tol)
    assert torch.equal(fast.acceptance, generic.acceptance)


def test_a_module_is_traced_once_and_read_again_as_it_is_now(monkeypatch):
    """The second capture of a module (or of its ``decode``) reuses its traced graph, reads the
    module's current layers and parameters, and traces again when the module has changed."""
    from rdfast.fastpath import capture

    x = torch.rand(N, P, dtype=torch.float64)
    vae = VAE50().double()
    seq = nn.Sequential(nn.Linear(K, 7), nn.Tanh(), nn.Linear(7, P)).double()
    for decoder in (vae.decode, seq):
        assert capture.mlp_of(decoder, x) is not None
    traces = []
    original = capture._Tracer.trace
    monkeypatch.setattr(capture._Tracer, "trace", lambda self, root: traces.append(root) or original(self, root))
    z = torch.randn(4, K, dtype=torch.float64)
    for decoder in (vae.decode, seq):  # kept graphs: no trace
        torch.testing.assert_close(capture.mlp_of(decoder, x).forward(z), decoder(z), rtol=1e-12, atol=1e-12)
    assert traces == []
    seq[1] = nn.ReLU()  # another activation module at the same place: the kept graph reads it
    seq[0].weight = nn.Parameter(torch.randn(7, K, dtype=torch.float64))  # a new parameter object
    net = capture.mlp_of(seq, x)
    assert traces == [] and isinstance(net.trunk[0].act, type(capture.mlp.ReLU()))
    torch.testing.assert_close(net.forward(z), seq(z), rtol=1e-12, atol=1e-12)
    seq.insert(2, nn.Linear(7, 7).double())  # a new layer: the kept graph misses it on the probe, so a new trace
    net = capture.mlp_of(seq, x)
    assert len(traces) == 1 and len(net.trunk) == 2
    torch.testing.assert_close(net.forward(z), seq(z), rtol=1e-12, atol=1e-12)


def test_kept_graphs_do_not_keep_modules_alive():
    import gc
    import weakref

    from rdfast.fastpath import capture

    seq = nn.Sequential(nn.Linear(K, 7), nn.Tanh(), nn.Linear(7, P)).double()
    assert capture.mlp_of(seq, torch.rand(N, P, dtype=torch.float64)) is not None
    alive = weakref.ref(seq)
    del seq
    gc.collect()
    assert alive() is None
