"""Fast path for plain MLP decoders: d(z) and ∇_z d(z) by a hand-derived backward, no autograd.

A plain MLP is an ``nn.Sequential`` of ``nn.Linear`` layers, each followed by at most one
standard activation φ_l (tanh, ReLU, leaky ReLU, sigmoid, ELU, softplus, identity):

    a_l = h_{l−1} W_lᵀ + b_l,   h_l = φ_l(a_l),   h_0 = z,   x̂ = h_n          (l = 1..n)

With δ_l = ∂d/∂a_l (per row, d summed over rows has these as its gradients):

    δ_n = ∂d/∂x̂ ⊙ φ_n'(a_n),   δ_{l−1} = (δ_l W_l) ⊙ φ_{l−1}'(a_{l−1}),   ∇_z d = δ_1 W_1

(the last product as (W_1ᵀ δ_1ᵀ)ᵀ: for a narrow latent that orientation is several times faster).

Derivatives come from the stored outputs h = φ(a): tanh 1 − h²; sigmoid h(1 − h);
ReLU [h > 0]; leaky ReLU with slope s ≥ 0: 1 if h > 0 else s; ELU with α ≥ 0: 1 if h > 0
else h + α (= α e^a); identity 1. Softplus (β, threshold) keeps its pre-activation a:
σ(βa), or 1 where βa > threshold. Each derivative is one fused in-place aten kernel, the
same one autograd runs, so the results agree with the generic path's to rounding.

With the ``cpu`` backend and the compiled kernels (rdfast.fastpath.cpu_kernels), each layer's bias
and activation are one fused pass after a bias-free matmul, and the output layer, the
distortion and δ_n = ∂d/∂x̂ ⊙ φ_n' are one pass for gaussian_nll and squared_error with an
identity, tanh or sigmoid output (float32 there uses vectorised exp/tanh, a few ulp from
torch's). Otherwise every step is a torch op.

Every buffer (activations, δ's, ∂d/∂x̂) is allocated once per evaluator; a call writes d and
∇_z d into the caller's buffers.
"""
from __future__ import annotations

import torch
from torch import nn

from . import cpu_kernels

_aten = torch.ops.aten


class _Activation:
    """An activation's twin: ``forward_(a, h)`` h = φ(a), in place (h is a) unless
    ``keeps_input`` (φ' needs a); ``backward_(δ, a, h)`` δ ← δ ⊙ φ'(a) in place;
    ``code``/``slope``: its compiled kernel in rdfast.fastpath.cpu_kernels (None: none)."""

    keeps_input = False
    code = None
    slope = 0.0


class _Identity(_Activation):
    code = cpu_kernels.Activation.IDENTITY

    def forward_(self, a, h):
        """h = a (h is a)."""

    def backward_(self, delta, a, h):
        """δ ⊙ 1."""


class _Tanh(_Activation):
    code = cpu_kernels.Activation.TANH

    def forward_(self, a, h):
        torch.tanh(a, out=h)

    def backward_(self, delta, a, h):
        """δ ⊙ (1 − h²)."""
        _aten.tanh_backward.grad_input(delta, h, grad_input=delta)


class _Sigmoid(_Activation):
    code = cpu_kernels.Activation.SIGMOID

    def forward_(self, a, h):
        torch.sigmoid(a, out=h)

    def backward_(self, delta, a, h):
        """δ ⊙ h(1 − h)."""
        _aten.sigmoid_backward.grad_input(delta, h, grad_input=delta)


class _ReLU(_Activation):
    code = cpu_kernels.Activation.RELU

    def forward_(self, a, h):
        torch.relu_(h)

    def backward_(self, delta, a, h):
        """δ ⊙ [h > 0]."""
        _aten.threshold_backward.grad_input(delta, h, 0, grad_input=delta)


class _LeakyReLU(_Activation):
    code = cpu_kernels.Activation.LEAKY_RELU

    def __init__(self, slope: float):
        self.slope = slope

    def forward_(self, a, h):
        torch.nn.functional.leaky_relu_(h, self.slope)

    def backward_(self, delta, a, h):
        """δ ⊙ (1 if h > 0 else s); with s ≥ 0, h > 0 iff a > 0."""
        _aten.leaky_relu_backward.grad_input(delta, h, self.slope, True, grad_input=delta)


class _ELU(_Activation):
    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward_(self, a, h):
        torch.nn.functional.elu_(h, self.alpha)

    def backward_(self, delta, a, h):
        """δ ⊙ (1 if h > 0 else h + α)."""
        _aten.elu_backward.grad_input(delta, self.alpha, 1.0, 1.0, True, h, grad_input=delta)


class _Softplus(_Activation):
    keeps_input = True

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = beta, threshold

    def forward_(self, a, h):
        _aten.softplus.out(a, self.beta, self.threshold, out=h)

    def backward_(self, delta, a, h):
        """δ ⊙ σ(βa) (δ where βa > threshold)."""
        _aten.softplus_backward.grad_input(delta, a, self.beta, self.threshold, grad_input=delta)


def _activation(module):
    """The fast-path twin of activation ``module``, or None if it is not a supported one."""
    kind = type(module)
    if kind is nn.Identity:
        return _Identity()
    if kind is nn.Tanh:
        return _Tanh()
    if kind is nn.Sigmoid:
        return _Sigmoid()
    if kind is nn.ReLU:
        return _ReLU()
    if kind is nn.LeakyReLU and module.negative_slope >= 0:
        return _LeakyReLU(float(module.negative_slope))
    if kind is nn.ELU and module.alpha >= 0:
        return _ELU(float(module.alpha))
    if kind is nn.Softplus:
        return _Softplus(float(module.beta), float(module.threshold))
    return None


def _hooked(module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def plain_mlp_layers(decoder, dtype: torch.dtype, device: torch.device):
    """[(W [out, in], b [out] or None, activation)] of a plain MLP decoder, else None.

    Plain: exactly ``nn.Sequential`` (not a subclass) of exact ``nn.Linear`` modules, each
    followed by at most one supported activation (identities are skipped), no hooks, weights
    of ``dtype`` on ``device``. Weights are detached views: no autograd graph is built.
    """
    if type(decoder) is not nn.Sequential or _hooked(decoder):
        return None
    layers = []
    for module in decoder:
        if _hooked(module):
            return None
        if type(module) is nn.Linear:
            if module.weight.dtype != dtype or module.weight.device != device:
                return None
            bias = None if module.bias is None else module.bias.detach()
            layers.append([module.weight.detach(), bias, _Identity()])
            continue
        act = _activation(module)
        if act is None or not layers:
            return None
        if isinstance(act, _Identity):
            continue
        if not isinstance(layers[-1][2], _Identity):
            return None  # two activations after one linear layer
        layers[-1][2] = act
    return [tuple(layer) for layer in layers] or None


class MLPEvaluator:
    """d(z) [B] (float64) and ∇_z d(z) [B, K] for a plain MLP decoder and a built-in distortion.

    Same contract and results as ``rdfast.fastpath.Evaluator``: d and ∂d/∂x̂ from the
    backend's distortion op (or the fused output kernel) at x̂ = f(z), then the backward above.
    """

    def __init__(self, layers, x: torch.Tensor, n_chains: int, dist, backend):
        self.layers, self.dist, self.backend, self.n_chains = layers, dist, backend, n_chains
        self.x_flat = x.reshape(x.shape[0], -1).contiguous()  # [N, P]
        rows = x.shape[0] * n_chains
        like = dict(dtype=x.dtype, device=x.device)
        self.pre, self.out, self.delta = [], [], []
        for W, _, act in layers:
            out = torch.empty(rows, W.shape[0], **like)  # [B, width] h_l
            self.out.append(out)
            self.pre.append(torch.empty_like(out) if act.keeps_input else out)  # [B, width] a_l
            self.delta.append(torch.empty_like(out))  # [B, width] δ_l
        compiled = backend.name == "cpu" and x.device.type == "cpu" and cpu_kernels.available()
        # per layer: its bias for the compiled kernels (zeros when it has none), or None
        self.fused_bias = [(torch.zeros(W.shape[0], **like) if b is None else b) if compiled and act.code is not None
                           else None for W, b, act in layers]
        self.fused_output = (self.fused_bias[-1] is not None and dist.kind in cpu_kernels.OUTPUT_KINDS
                             and layers[-1][2].code in cpu_kernels.OUTPUT_ACTIVATIONS)
        self.weights_t = [W.t() for W, _, _ in layers]  # [in, out] views
        self.grad_t = torch.empty(layers[0][0].shape[1], rows, **like)  # [K, B] ∇_z dᵀ
        self.bias_act = [None if b is None else cpu_kernels.bias_act(act.code, act.slope, out, b)
                         for (_, _, act), out, b in zip(layers, self.out, self.fused_bias)]
        self.output_launches = {}  # d.data_ptr() -> launch of the fused output kernel writing that d

    def _layer(self, l: int, h: torch.Tensor) -> torch.Tensor:
        """h_l = φ_l(h_{l−1} W_lᵀ + b_l) [B, width], keeping a_l where φ_l' needs it."""
        _, b, act = self.layers[l]
        Wt, a, out, fused_bias = self.weights_t[l], self.pre[l], self.out[l], self.fused_bias[l]
        if fused_bias is not None:
            torch.mm(h, Wt, out=out)
            self.bias_act[l]()
            return out
        if b is None:
            torch.mm(h, Wt, out=a)
        else:
            torch.addmm(b, h, Wt, out=a)
        act.forward_(a, out)
        return out

    def _output(self, h: torch.Tensor, d: torch.Tensor) -> None:
        """d [B] and δ_n = ∂d/∂a_n (into ``delta[-1]``) from h_{n−1}."""
        act = self.layers[-1][2]
        if self.fused_output:
            torch.mm(h, self.weights_t[-1], out=self.delta[-1])
            launch = self.output_launches.get(d.data_ptr())
            if launch is None:  # the launch keeps d alive, so its address is not reused while cached
                launch = self.output_launches[d.data_ptr()] = cpu_kernels.mlp_output(
                    self.dist.kind, act.code, self.delta[-1], self.fused_bias[-1], self.x_flat, self.dist.logvar, d,
                    self.n_chains)
            launch()
            return
        xhat = self._layer(len(self.layers) - 1, h)
        self.backend.distortion(self.dist.kind, self.x_flat, xhat, self.dist.logvar, d, self.delta[-1], None,
                                self.n_chains)
        act.backward_(self.delta[-1], self.pre[-1], self.out[-1])

    def __call__(self, z: torch.Tensor, d: torch.Tensor, g: torch.Tensor) -> None:
        """Write d(z) into ``d`` [B] and ∇_z d(z) into ``g`` [B, K]."""
        h = z.detach()
        for l in range(len(self.layers) - 1):
            h = self._layer(l, h)
        self._output(h, d)
        for l in range(len(self.layers) - 1, 0, -1):  # δ_{l−1} = (δ_l W_l) ⊙ φ'_{l−1}
            torch.mm(self.delta[l], self.layers[l][0], out=self.delta[l - 1])
            self.layers[l - 1][2].backward_(self.delta[l - 1], self.pre[l - 1], self.out[l - 1])
        torch.mm(self.weights_t[0], self.delta[0].t(), out=self.grad_t)  # (δ_1 W_1)ᵀ: faster for narrow K
        g.copy_(self.grad_t.t())
