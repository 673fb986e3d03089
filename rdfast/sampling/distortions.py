"""Distortions d(x, x̂) per item: the built-ins and custom callables, resolved and checked.

Built-ins (closed-form ∂d/∂x̂ computed by the backend's fused ``distortion`` op):

    gaussian_nll   ½ Σ_j (x_j − x̂_j)² e^{−v_j} + v_j + log 2π   (log-variance v: scalar,
                   per-pixel tensor, or returned by the decoder as ``(mean, logvar)``)
    bernoulli_nll  Σ_j softplus(ℓ_j) − x_j ℓ_j                  (decoder returns logits ℓ)
    squared_error  Σ_j (x_j − x̂_j)²                             (a sum, not a mean)

A custom distortion is any differentiable callable ``fn(x, x_hat) -> [rows]``; it receives
``x`` and ``x_hat`` of the same shape ``[rows, *event]`` and its gradient comes from autograd.
How d and ∇_z d are evaluated at a batch of latents is ``rdfast.fastpath``'s business: one
vector–Jacobian product through the decoder per evaluation, or a hand-derived backward.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..backends.spec import KINDS


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
        if distortion == "bernoulli_nll" and ((x < 0) | (x > 1)).any():
            raise ValueError(f"x: bernoulli_nll needs data in [0, 1] (binarised images: 0 or 1), got values in "
                             f"[{x.min().item():.4g}, {x.max().item():.4g}]")
        return Distortion(distortion, distortion)
    if logvar is None:
        return Distortion(distortion, distortion)
    if not _numeric(logvar):
        raise TypeError(f"logvar: expected a number or a tensor of numbers (scalar or of the data shape), got "
                        f"{logvar!r}")
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


def _numeric(value) -> bool:
    """A real number, or a tensor, array or nested sequence of them (not strings, bools or objects)."""
    if isinstance(value, torch.Tensor):
        return not (value.dtype.is_complex or value.dtype == torch.bool)
    try:
        return np.asarray(value).dtype.kind in "fiu"
    except (ValueError, TypeError):  # a ragged sequence
        return False
