"""Fast path for MLP decoders: d(z) and ∇_z d(z) by a hand-derived backward, no autograd.

An MLP (``MLP``, read from a decoder by ``rdfast.fastpath.capture``) is a trunk of dense layers,
each followed by one standard activation φ_l (tanh, ReLU, leaky ReLU, sigmoid, ELU, softplus,
identity), and one or two output heads of the same form with an affine output map s·φ + c:

    a_l = h_{l−1} W_lᵀ + b_l,   h_l = φ_l(a_l),   h_0 = z                       (trunk, l = 1..n)
    x̂ = s φ(h_n Wᵀ + b) + c                                                    (the mean head)
    v = s' φ'(h_n W'ᵀ + b') + c'                    (a log-variance head: the decoder returns (x̂, v))

With δ = ∂d/∂a per row (d summed over rows has these as its gradients): a head's
δ = ∂d/∂x̂ · s ⊙ φ'(a); the trunk's last δ_n = (Σ_heads δ W) ⊙ φ_n'(a_n);
δ_{l−1} = (δ_l W_l) ⊙ φ_{l−1}'(a_{l−1}); ∇_z d = δ_1 W_1 (or Σ_heads δ W without a trunk), written
straight into the caller's buffer (as (W_1ᵀ δ_1ᵀ)ᵀ plus a transposed copy it measured no faster on
any shape of bench/configs.py, and 2–3× slower for K ≤ 10).

Derivatives come from the stored outputs h = φ(a): tanh 1 − h²; sigmoid h(1 − h);
ReLU [h > 0]; leaky ReLU with slope s ≥ 0: 1 if h > 0 else s; ELU with α ≥ 0: 1 if h > 0
else h + α (= α e^a); identity 1. Softplus (β, threshold) keeps its pre-activation a:
σ(βa), or 1 where βa > threshold. Each derivative is one fused in-place aten kernel, the
same one autograd runs, so the results agree with the generic path's to rounding.

With the ``cpu`` backend and the compiled kernels (rdfast.fastpath.cpu_kernels), each layer's bias
and activation are one fused pass after a bias-free matmul and its derivative one compiled pass
with the aten kernels' formulas (softplus aside: torch ops), and a single
head with an identity, tanh or sigmoid activation, its output map, any built-in distortion with a
fixed log-variance and δ are one pass (float32 there uses vectorised exp/expm1/log1p/tanh, a few
ulp from torch's). Where all of that holds, a call is one compiled program (cpu_kernels.mlp_program:
the same steps, the products by torch's own BLAS gemm, no Python between them). Otherwise every
step is a torch op.

Every buffer (activations, δ's, ∂d/∂x̂) is allocated once per evaluator; a call writes d and
∇_z d into the caller's buffers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from . import cpu_kernels

_aten = torch.ops.aten


class Activation:
    """An activation's twin: ``forward_(a, h)`` h = φ(a), in place (h is a) unless
    ``keeps_input`` (φ' needs a); ``backward_(δ, a, h)`` δ ← δ ⊙ φ'(a) in place;
    ``code``/``param``: its compiled kernel in rdfast.fastpath.cpu_kernels (None: none)."""

    keeps_input = False
    code = None
    param = 0.0


class Identity(Activation):
    code = cpu_kernels.Activation.IDENTITY

    def forward_(self, a, h):
        """h = a (h is a)."""

    def backward_(self, delta, a, h):
        """δ ⊙ 1."""


class Tanh(Activation):
    code = cpu_kernels.Activation.TANH

    def forward_(self, a, h):
        torch.tanh(a, out=h)

    def backward_(self, delta, a, h):
        """δ ⊙ (1 − h²)."""
        _aten.tanh_backward.grad_input(delta, h, grad_input=delta)


class Sigmoid(Activation):
    code = cpu_kernels.Activation.SIGMOID

    def forward_(self, a, h):
        torch.sigmoid(a, out=h)

    def backward_(self, delta, a, h):
        """δ ⊙ h(1 − h)."""
        _aten.sigmoid_backward.grad_input(delta, h, grad_input=delta)


class ReLU(Activation):
    code = cpu_kernels.Activation.RELU

    def forward_(self, a, h):
        torch.relu_(h)

    def backward_(self, delta, a, h):
        """δ ⊙ [h > 0]."""
        _aten.threshold_backward.grad_input(delta, h, 0, grad_input=delta)


class LeakyReLU(Activation):
    """Negative slope s ≥ 0 (so that h > 0 iff a > 0)."""

    code = cpu_kernels.Activation.LEAKY_RELU

    def __init__(self, slope: float):
        self.param = slope

    def forward_(self, a, h):
        torch.nn.functional.leaky_relu_(h, self.param)

    def backward_(self, delta, a, h):
        """δ ⊙ (1 if h > 0 else s)."""
        _aten.leaky_relu_backward.grad_input(delta, h, self.param, True, grad_input=delta)


class ELU(Activation):
    """α ≥ 0 (so that h > 0 iff a > 0)."""

    code = cpu_kernels.Activation.ELU

    def __init__(self, alpha: float):
        self.param = alpha

    def forward_(self, a, h):
        torch.nn.functional.elu_(h, self.param)

    def backward_(self, delta, a, h):
        """δ ⊙ (1 if h > 0 else h + α)."""
        _aten.elu_backward.grad_input(delta, self.param, 1.0, 1.0, True, h, grad_input=delta)


class Softplus(Activation):
    keeps_input = True

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = beta, threshold

    def forward_(self, a, h):
        _aten.softplus.out(a, self.beta, self.threshold, out=h)

    def backward_(self, delta, a, h):
        """δ ⊙ σ(βa) (δ where βa > threshold)."""
        _aten.softplus_backward.grad_input(delta, a, self.beta, self.threshold, grad_input=delta)


@dataclass
class Layer:
    """h' = s·φ(h Wᵀ + b) + c: W [out, in], b [out] or None; (s, c) = (1, 0) in the trunk."""

    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    act: Activation
    scale: float = 1.0
    shift: float = 0.0

    @property
    def affine(self) -> bool:
        return self.scale != 1.0 or self.shift != 0.0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The layer in torch ops, on a copy [rows, out]."""
        a = torch.nn.functional.linear(h, self.weight, self.bias)
        out = torch.empty_like(a) if self.act.keeps_input else a
        self.act.forward_(a, out)
        return out * self.scale + self.shift if self.affine else out


@dataclass
class MLP:
    """A trunk of layers (possibly none) and the heads: ``mean`` x̂ [rows, P] and, for a decoder
    returning (mean, log-variance), ``logvar`` [rows, P]."""

    trunk: list
    mean: Layer
    logvar: Optional[Layer] = None

    @property
    def heads(self) -> list:
        return [self.mean] if self.logvar is None else [self.mean, self.logvar]

    @property
    def latent_dim(self) -> int:
        return (self.trunk or self.heads)[0].weight.shape[1]

    def forward(self, z: torch.Tensor):
        """The decoder's output in torch ops: x̂, or (x̂, v)."""
        h = z
        for layer in self.trunk:
            h = layer.forward(h)
        outputs = [head.forward(h) for head in self.heads]
        return outputs[0] if self.logvar is None else tuple(outputs)


class MLPEvaluator:
    """d(z) [B] (float64) and ∇_z d(z) [B, K] for an MLP decoder and a built-in distortion.

    Same contract and results as ``rdfast.fastpath.Evaluator``: d and ∂d/∂x̂ (and ∂d/∂v) from the
    backend's distortion op (or the fused output kernel) at the heads' outputs, then the backward
    above.
    """

    def __init__(self, net: MLP, x: torch.Tensor, n_chains: int, dist, backend):
        self.net, self.dist, self.backend, self.n_chains = net, dist, backend, n_chains
        self.layers = net.trunk + net.heads  # trunk layers, then the heads
        self.n_trunk = len(net.trunk)
        self.x_flat = x.reshape(x.shape[0], -1).contiguous()  # [N, P]
        rows = x.shape[0] * n_chains
        like = dict(dtype=x.dtype, device=x.device)
        self.pre, self.out, self.delta = [], [], []
        for layer in self.layers:
            out = torch.empty(rows, layer.weight.shape[0], **like)  # [B, width] h_l
            self.out.append(out)
            self.pre.append(torch.empty_like(out) if layer.act.keeps_input else out)  # [B, width] a_l
            self.delta.append(torch.empty_like(out))  # [B, width] δ_l
        # the heads' outputs after their maps s·h + c, where a head has one: [B, P]
        self.mapped = [torch.empty_like(self.out[self.n_trunk + i]) if head.affine else None
                       for i, head in enumerate(net.heads)]
        compiled = backend.name == "cpu" and x.device.type == "cpu" and cpu_kernels.available()
        # per layer: its bias for the compiled kernels (zeros when it has none), or None
        self.fused_bias = [(torch.zeros(l.weight.shape[0], **like) if l.bias is None else l.bias)
                           if compiled and l.act.code is not None else None for l in self.layers]
        # one head (so a fixed log-variance: ``make_evaluator`` pairs the heads with the distortion)
        self.fused_output = (net.logvar is None and self.fused_bias[-1] is not None
                             and net.mean.act.code in cpu_kernels.OUTPUT_ACTIVATIONS)
        self.weights_t = [l.weight.t() for l in self.layers]  # [in, out] views
        self.bias_act = [None if b is None else cpu_kernels.bias_act(l.act.code, l.act.param, out, b)
                         for l, out, b in zip(self.layers, self.out, self.fused_bias)]
        self.output_launches = {}  # d.data_ptr() -> launch of the fused output kernel writing that d
        # per layer: the compiled δ ← δ ⊙ φ'(a), or None (torch ops: Activation.backward_)
        self.act_backward = [cpu_kernels.act_backward(l.act.code, l.act.param, delta, out) if b is not None else None
                             for l, delta, out, b in zip(self.layers, self.delta, self.out, self.fused_bias)]
        self.program = self._program(rows) if self.fused_output else None  # the whole call in C++, or None

    def _program(self, rows: int):
        """cpu_kernels.mlp_program of this network where every layer is fused and torch's BLAS is
        reachable, else None."""
        dtype = self.x_flat.dtype
        if (cpu_kernels.blas_gemm(dtype) is None or any(b is None for b in self.fused_bias)
                or any(not l.weight.is_contiguous() or l.weight.dtype != dtype for l in self.layers)):
            return None
        trunk = [(l.weight, self.out[i], self.delta[i], l.act.code, l.act.param, self.fused_bias[i])
                 for i, l in enumerate(self.net.trunk)]
        head = self.net.mean
        output = dict(kind=self.dist.kind, act=head.act.code, bias=self.fused_bias[-1], x=self.x_flat,
                      logvar=self.dist.logvar, n_chains=self.n_chains, scale=head.scale, shift=head.shift)
        return cpu_kernels.mlp_program(trunk, (head.weight, self.delta[-1]), output, rows)

    def _layer(self, l: int, h: torch.Tensor) -> torch.Tensor:
        """h_l = φ_l(h_{l−1} W_lᵀ + b_l) [B, width], keeping a_l where φ_l' needs it."""
        layer = self.layers[l]
        Wt, a, out, fused_bias = self.weights_t[l], self.pre[l], self.out[l], self.fused_bias[l]
        if fused_bias is not None:
            torch.mm(h, Wt, out=out)
            self.bias_act[l]()
            return out
        if layer.bias is None:
            torch.mm(h, Wt, out=a)
        else:
            torch.addmm(layer.bias, h, Wt, out=a)
        layer.act.forward_(a, out)
        return out

    def _fused_output(self, h: torch.Tensor, d: torch.Tensor) -> None:
        """d [B] and the head's δ by the compiled output kernel, from the trunk's h_n."""
        head, delta = self.net.mean, self.delta[-1]
        torch.mm(h, self.weights_t[-1], out=delta)
        launch = self.output_launches.get(d.data_ptr())
        if launch is None:  # the launch keeps d alive, so its address is not reused while cached
            launch = self.output_launches[d.data_ptr()] = cpu_kernels.mlp_output(
                self.dist.kind, head.act.code, delta, self.fused_bias[-1], self.x_flat, self.dist.logvar, d,
                self.n_chains, head.scale, head.shift)
        launch()

    def _output(self, h: torch.Tensor, d: torch.Tensor) -> None:
        """d [B] and every head's δ = ∂d/∂a from the trunk's h_n."""
        if self.fused_output:
            return self._fused_output(h, d)
        heads = range(self.n_trunk, len(self.layers))
        values = []  # the heads' outputs x̂ (and v) [B, P]
        for i, l in enumerate(heads):
            out, head = self._layer(l, h), self.layers[l]
            if head.affine:
                out = torch.add(torch.mul(out, head.scale, out=self.mapped[i]), head.shift, out=self.mapped[i])
            values.append(out)
        logvar = self.dist.logvar if self.net.logvar is None else values[1]
        grad_logvar = None if self.net.logvar is None else self.delta[-1]
        self.backend.distortion(self.dist.kind, self.x_flat, values[0], logvar, d, self.delta[self.n_trunk],
                                grad_logvar, self.n_chains)
        for l in heads:
            head = self.layers[l]
            if head.scale != 1.0:
                self.delta[l].mul_(head.scale)
            self._backward_act(l)

    def _program_takes(self, z: torch.Tensor, d: torch.Tensor, g: torch.Tensor) -> bool:
        """Whether the program (raw addresses) may run on these buffers: its shapes, dtypes, contiguous."""
        rows = self.delta[-1].shape[0]
        shape = (rows, self.net.latent_dim)
        return (z.shape == shape and g.shape == shape and d.shape == (rows,) and z.dtype == g.dtype
                == self.x_flat.dtype and d.dtype == torch.float64 and z.is_contiguous() and g.is_contiguous()
                and d.is_contiguous())

    def _backward_act(self, l: int) -> None:
        """δ_l ← δ_l ⊙ φ_l'(a_l) in place."""
        launch = self.act_backward[l]
        if launch is not None:
            launch()
        else:
            self.layers[l].act.backward_(self.delta[l], self.pre[l], self.out[l])

    def _pull(self, sources, out: torch.Tensor) -> None:
        """out = Σ δ W over (layer index) sources: the gradient at their common input [B, in]."""
        first, *rest = sources
        torch.mm(self.delta[first], self.layers[first].weight, out=out)
        for l in rest:
            out.addmm_(self.delta[l], self.layers[l].weight)

    def __call__(self, z: torch.Tensor, d: torch.Tensor, g: torch.Tensor) -> None:
        """Write d(z) into ``d`` [B] and ∇_z d(z) into ``g`` [B, K]."""
        if self.program is not None and self._program_takes(z, d, g):
            return self.program(z, g, d)
        h = z.detach()
        for l in range(self.n_trunk):
            h = self._layer(l, h)
        self._output(h, d)
        sources = list(range(self.n_trunk, len(self.layers)))  # the layers whose input is h_n
        for l in range(self.n_trunk - 1, -1, -1):  # δ_l = (Σ δ W) ⊙ φ_l'
            self._pull(sources, self.delta[l])
            self._backward_act(l)
            sources = [l]
        self._pull(sources, g)  # ∇_z d = Σ δ W
