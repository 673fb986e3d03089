"""The generic evaluator: d(z) and ∇_z d(z) by autograd through any decoder.

d comes from the backend's fused distortion op (closed-form ∂d/∂x̂) for a built-in distortion,
or from the custom callable; ∇_z d is then one vector–Jacobian product through the decoder.
"""
from __future__ import annotations

import torch

from ..sampling.distortions import Distortion


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
            if t.shape[0] != rows or t[0].numel() != self.x_flat.shape[1] or not _same_layout(t.shape[1:], self.event):
                raise ValueError(f"decoder: {name} has shape {tuple(t.shape)}, expected [{rows}, *{self.event}] "
                                 f"to match x")
            if t.dtype != self.x_flat.dtype or t.device != self.x_flat.device:
                raise ValueError(f"decoder: {name} is {t.dtype} on {t.device}, but x is "
                                 f"{self.x_flat.dtype} on {self.x_flat.device}")
        return mean, logvar

    def __call__(self, z: torch.Tensor, d: torch.Tensor, g: torch.Tensor) -> None:
        """Write d(z) into ``d`` [B] and ∇_z d(z) into ``g`` [B, K]."""
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
                if not value.requires_grad:
                    raise ValueError("distortion: the custom callable's value does not depend on z through autograd "
                                     "(a detached decoder output, or .detach()/NumPy inside the distortion?)")
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
                keep = [i for i, t in enumerate(outputs) if t.requires_grad]  # a frozen constant logvar has no graph
                if not keep:
                    raise ValueError("decoder: its output does not depend on z through autograd (detached, computed "
                                     "under torch.no_grad(), or through NumPy?); rdfast needs its gradient in z")
                (grad,) = torch.autograd.grad([outputs[i] for i in keep], zr, [grads[i] for i in keep],
                                              allow_unused=True)
        if grad is None:  # the output does not depend on z
            g.zero_()
        else:
            g.copy_(grad)


def _same_layout(shape, event) -> bool:
    """An output [rows, *shape] matches x [N, *event] of as many numbers: the same shape but for
    dimensions of size 1, or either one flat (a [rows, 3, 8, 8] output for x [N, 8, 8, 3] does not)."""
    squeeze = [s for s in shape if s != 1], [s for s in event if s != 1]
    return len(shape) <= 1 or len(event) <= 1 or squeeze[0] == squeeze[1]
