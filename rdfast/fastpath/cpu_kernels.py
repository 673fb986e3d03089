"""The compiled CPU kernels of the MLP fast path (``rdfast._C.cpu``), as prepared launches.

``available()`` says whether this build has them. ``bias_act`` and ``mlp_output`` return a
launch on fixed contiguous CPU tensors (the evaluator's own buffers, made once), checked by
their callers (``rdfast.fastpath.mlp`` builds every argument itself):

    bias_act(act, slope, a, bias)           a ← φ(a + b) in place        a [R, W], bias [W]
    mlp_output(kind, act, a, bias, x,       x̂ = φ(a + b); d [B] and δ = ∂d/∂(a + b) into a
               logvar, d, n_chains)         a [B, P], x [N, P], logvar [1] | [P] | None
"""
from __future__ import annotations

import enum

import torch

from ..backends import native
from ..backends.spec import TORCH_DTYPES, Kind, LogvarLayout


class Activation(enum.IntEnum):
    """Activations the compiled kernels know (csrc/cpu_mlp.h's MlpActivation)."""

    IDENTITY = 0
    TANH = 1
    SIGMOID = 2
    RELU = 3
    LEAKY_RELU = 4


OUTPUT_ACTIVATIONS = (Activation.IDENTITY, Activation.TANH, Activation.SIGMOID)
OUTPUT_KINDS = ("gaussian_nll", "squared_error")


def available() -> bool:
    return native._C is not None


def bias_act(act: Activation, slope: float, a: torch.Tensor, bias: torch.Tensor):
    args = native.struct("BiasActArgs", act=int(act), slope=slope, a=a.data_ptr(), bias=bias.data_ptr(),
                         rows=a.shape[0], width=a.shape[1])
    return _launch(native._C.cpu.mlp_bias_act, int(TORCH_DTYPES[a.dtype]), args, (a, bias))


def mlp_output(kind: str, act: Activation, a, bias, x, logvar, d, n_chains: int):
    layout = (LogvarLayout.NONE if logvar is None else
              LogvarLayout.SCALAR if logvar.numel() == 1 else LogvarLayout.PER_PIXEL)
    args = native.struct("MlpOutputArgs", kind=int(Kind.of(kind)), act=int(act), logvar_layout=int(layout),
                         a=a.data_ptr(), bias=bias.data_ptr(), x=x.data_ptr(), logvar=native.address(logvar),
                         d=d.data_ptr(), n_items=x.shape[0], n_chains=n_chains, size=x.shape[1])
    return _launch(native._C.cpu.mlp_output, int(TORCH_DTYPES[a.dtype]), args, (a, bias, x, logvar, d))


def _launch(launcher, dtype: int, args, keep_alive):
    def launch():
        launcher(dtype, args)
    launch.keep_alive = keep_alive
    return launch
