"""Evaluation of d(z) and ∇_z d(z) at a batch of latents: the autograd evaluator for any decoder,
and an autograd-free fast path with fused compiled kernels for plain MLPs."""
from __future__ import annotations

import torch

from .autograd import Evaluator
from .mlp import MLPEvaluator, plain_mlp_layers


def make_evaluator(decoder, x: torch.Tensor, n_chains: int, dist, backend):
    """The evaluator of d and ∇_z d for ``decoder``: the autograd-free ``MLPEvaluator`` for a
    plain MLP (``rdfast.fastpath.mlp``) with a built-in distortion and a fixed log-variance, else
    the autograd ``Evaluator``. Both compute the same function: ``evaluate(z, d, g)`` writes
    d(z) [B] (float64) and ∇_z d(z) [B, K]."""
    if dist.kind is not None and not dist.logvar_from_decoder:
        layers = plain_mlp_layers(decoder, x.dtype, x.device)
        if layers is not None and layers[-1][0].shape[0] == x[0].numel():
            return MLPEvaluator(layers, x, n_chains, dist, backend)
    return Evaluator(decoder, x, n_chains, dist, backend)
