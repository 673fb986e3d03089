"""Evaluation of d(z) and ∇_z d(z) at a batch of latents: the autograd evaluator for any decoder,
and an autograd-free fast path with fused compiled kernels for decoders that compute an MLP.

Decoders that are not MLPs (convolutions, normalisation) run on the autograd path: torch.compile
of forward + distortion + VJP measured slower there on the CPU (a DCGAN generator, 160 rows, one
thread: 73 ms per evaluation compiled against 35–42 ms eager, after an 88 s compile), so no
compiled evaluator is used; on a GPU the device loop replays whole transitions as CUDA graphs."""
from __future__ import annotations

import torch

from . import capture
from .autograd import Evaluator
from .mlp import MLPEvaluator


def make_evaluator(decoder, x: torch.Tensor, n_chains: int, dist, backend):
    """The evaluator of d and ∇_z d for ``decoder``: the autograd-free ``MLPEvaluator`` when the
    decoder computes an MLP (``rdfast.fastpath.capture``) whose heads match the built-in
    distortion (a (mean, log-variance) pair exactly when gaussian_nll has no fixed log-variance),
    else the autograd ``Evaluator``. Both compute the same function: ``evaluate(z, d, g)`` writes
    d(z) [B] (float64) and ∇_z d(z) [B, K]."""
    if dist.kind is not None:
        net = capture.mlp_of(decoder, x)
        if net is not None and (net.logvar is not None) == dist.logvar_from_decoder:
            return MLPEvaluator(net, x, n_chains, dist, backend)
    return Evaluator(decoder, x, n_chains, dist, backend)
