"""Distortions d(x, x̂) per item, and the evaluation of d and ∇_z d at a batch of latents.

Built-ins (closed-form ∂d/∂x̂ computed by the backend's fused ``distortion`` op):

    gaussian_nll   ½ Σ_j (x_j − x̂_j)² e^{−v_j} + v_j + log 2π   (log-variance v: scalar,
                   per-pixel tensor, or returned by the decoder as ``(mean, logvar)``)
    bernoulli_nll  Σ_j softplus(ℓ_j) − x_j ℓ_j                  (decoder returns logits ℓ)
    squared_error  Σ_j (x_j − x̂_j)²                             (a sum, not a mean)

A custom distortion is any differentiable callable ``fn(x, x_hat) -> [rows]``; it receives
``x`` and ``x_hat`` of the same shape ``[rows, *event]`` and its gradient comes from autograd.
In every case ∇_z d is one vector–Jacobian product through the decoder per evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..backends.spec import KINDS
from ..fastpath.mlp import MLPEvaluator, plain_mlp_layers


@dataclass
class Distortion:
    """A resolved distortion: a built-in ``kind`` or a custom ``fn``, plus a fixed log-variance."""

    name: str
    kind: Optional[str]  # one of KINDS, or None for a custom callable
    fn: Optional[Callable] = None
    logvar: Optional[torch.Tensor] = None  # [1] or [P] in the compute dtype, or None

    @property
    def logvar_from_decoder(self) -> bool:
        """gaussian_nll without a fixed log-variance: the decoder returns (mean, logvar)."""
        return self.kind == "gaussian_nll" and self.logvar is None


def resolve(distortion, logvar, x: torch.Tensor) -> Distortion:
    """Check ``distortion`` / ``logvar`` against data ``x [N, *event]`` and resolve them."""
    P = x[0].numel()
    if callable(distortion) and not isinstance(distortion, str):
        if logvar is not None:
            raise ValueError("logvar: only used with distortion='gaussian_nll', not with a custom callable")
        return Distortion(getattr(distortion, "__name__", "custom"), None, fn=distortion)
    if distortion not in KINDS:
        raise ValueError(f"distortion: expected one of {list(KINDS)} or a callable fn(x, x_hat) -> [rows], got {distortion!r}")
    if distortion != "gaussian_nll":
        if logvar is not None:
            raise ValueError(f"logvar: only used with distortion='gaussian_nll', not {distortion!r}")
        return Distortion(distortion, distortion)
    if logvar is None:
        return Distortion(distortion, distortion)
    lv = torch.as_tensor(logvar).detach().to(device=x.device, dtype=x.dtype)
    if lv.numel() == 1:
        lv = lv.reshape(1)
    elif lv.shape == x.shape[1:] or (lv.dim() == 1 and lv.numel() == P):
        lv = lv.reshape(P)
    else:
        raise ValueError(f"logvar: expected a scalar or a tensor of the data shape {tuple(x.shape[1:])}, got shape {tuple(lv.shape)}")
    if not torch.isfinite(lv).all():
        raise ValueError("logvar: contains NaN or inf")
    return Distortion(distortion, distortion, logvar=lv.contiguous())


class Evaluator:
    """d(z) [B] (float64) and ∇_z d(z) [B, K] for B = N·M rows of latents, one decoder pass each.

    ``x`` [N, *event] is read per item by the backend (never tiled), except for custom
    distortions, which receive it repeated per row once at construction.
    """

    def __init__(self, decoder, x: torch.Tensor, n_chains: int, dist: Distortion, backend):
        self.decoder, self.dist, self.backend, self.n_chains = decoder, dist, backend, n_chains
        self.event = tuple(x.shape[1:])
        self.x_flat = x.reshape(x.shape[0], -1).contiguous()  # [N, P]
        rows, P = x.shape[0] * n_chains, self.x_flat.shape[1]
        if dist.kind is None:
            self.x_rows = x.repeat_interleave(n_chains, 0)  # [B, *event]
        else:
            self.grad_xhat = torch.empty(rows, P, dtype=x.dtype, device=x.device)  # [B, P]
            self.grad_logvar = (torch.empty(rows, P, dtype=x.dtype, device=x.device)
                                if dist.logvar_from_decoder else None)

    def _split(self, out, rows):
        """Decoder output -> (mean [B, P], logvar [B, P] or None), checking shape and dtype."""
        if isinstance(out, (tuple, list)):
            if not (self.dist.logvar_from_decoder and len(out) == 2):
                raise ValueError("decoder: returned a tuple; a (mean, logvar) pair is only accepted with "
                                 "distortion='gaussian_nll' and logvar=None")
            mean, logvar = out
        else:
            if self.dist.logvar_from_decoder:
                raise ValueError("logvar: distortion='gaussian_nll' needs logvar= (scalar or per-pixel) "
                                 "or a decoder returning (mean, logvar)")
            mean, logvar = out, None
        for name, t in (("output", mean), ("logvar output", logvar)):
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"decoder: {name} must be a tensor, got {type(t).__name__}")
            if t.shape[0] != rows or t[0].numel() != self.x_flat.shape[1]:
                raise ValueError(f"decoder: {name} has shape {tuple(t.shape)}, expected [{rows}, *{self.event}] "
                                 f"to match x")
            if t.dtype != self.x_flat.dtype or t.device != self.x_flat.device:
                raise ValueError(f"decoder: {name} is {t.dtype} on {t.device}, but x is "
                                 f"{self.x_flat.dtype} on {self.x_flat.device}")
        return mean, logvar

    def __call__(self, z: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Write d(z) into ``d`` [B] and return ∇_z d(z) [B, K] (contiguous)."""
        rows = z.shape[0]
        with torch.enable_grad():
            zr = z.detach().requires_grad_(True)
            mean, logvar = self._split(self.decoder(zr), rows)
            if self.dist.kind is None:
                value = self.dist.fn(self.x_rows, mean.reshape(rows, *self.event))
                if not (isinstance(value, torch.Tensor) and value.shape == (rows,)):
                    raise ValueError(f"distortion: custom callable must return a tensor of shape [{rows}], "
                                     f"got {getattr(value, 'shape', type(value).__name__)}")
                d.copy_(value.detach())
                (grad,) = torch.autograd.grad(value.sum(), zr, allow_unused=True)
            else:
                mean_flat = mean.detach().reshape(rows, -1)
                lv = self.dist.logvar if logvar is None else logvar.detach().reshape(rows, -1).contiguous()
                self.backend.distortion(self.dist.kind, self.x_flat, mean_flat.contiguous(), lv, d,
                                        self.grad_xhat, self.grad_logvar, self.n_chains)
                outputs, grads = [mean], [self.grad_xhat.view_as(mean)]
                if logvar is not None:
                    outputs.append(logvar)
                    grads.append(self.grad_logvar.view_as(logvar))
                (grad,) = torch.autograd.grad(outputs, zr, grads, allow_unused=True)
        if grad is None:  # the output does not depend on z
            grad = torch.zeros_like(z)
        return grad.contiguous()


def make_evaluator(decoder, x: torch.Tensor, n_chains: int, dist: Distortion, backend):
    """The evaluator of d and ∇_z d for ``decoder``: the autograd-free ``MLPEvaluator`` for a
    plain MLP (``rdfast.mlp``) with a built-in distortion and a fixed log-variance, else
    ``Evaluator``. Both compute the same function."""
    if dist.kind is not None and not dist.logvar_from_decoder:
        layers = plain_mlp_layers(decoder, x.dtype, x.device)
        if layers is not None and layers[-1][0].shape[0] == x[0].numel():
            return MLPEvaluator(layers, x, n_chains, dist, backend)
    return Evaluator(decoder, x, n_chains, dist, backend)
