"""The compiled CPU kernels of the MLP fast path and of the keyed RNG (``rdfast._C.cpu``).

``available()`` says whether this build has them; each wrapper takes contiguous CPU tensors
and calls the kernel with raw pointers (no checks beyond what the callers guarantee:
rdfast.mlp and rdfast.rng build every argument themselves).

    bias_act(code, slope, a, bias)          a ← φ(a + b) in place        a [R, W], bias [W]
    mlp_output(kind, code, a, bias, x,      x̂ = φ(a + b); d [B] and δ = ∂d/∂(a + b) into a
               logvar, d, n_chains)         a [B, P], x [N, P], logvar [1] | [P] | None
    philox_words(seed, items, M, blocks,    Philox-4x32-10 words [4, N, M, blocks] (int64); step
                 step, stream)              an int or a 0-d int64 tensor (read by the kernel)
"""
from __future__ import annotations

import torch

from ..backends.cpu import DTYPE_CODES as _DTYPES, scalar_arg
from ..backends.protocol import KINDS

try:
    from rdfast import _C
except ImportError:  # a source tree without the compiled extension
    _C = None

ACT_IDENTITY, ACT_TANH, ACT_SIGMOID, ACT_RELU, ACT_LEAKY_RELU = range(5)
OUTPUT_ACTS = (ACT_IDENTITY, ACT_TANH, ACT_SIGMOID)
OUTPUT_KINDS = ("gaussian_nll", "squared_error")
_LOGVAR_NONE, _LOGVAR_SCALAR, _LOGVAR_PER_PIXEL = 0, 1, 2


def available() -> bool:
    return _C is not None and hasattr(_C.cpu, "mlp_output")


def bias_act(code: int, slope: float, a: torch.Tensor, bias: torch.Tensor) -> None:
    _C.cpu.mlp_bias_act(_DTYPES[a.dtype], code, slope, a.data_ptr(), bias.data_ptr(), a.shape[0], a.shape[1])


def mlp_output(kind: str, code: int, a, bias, x, logvar, d, n_chains: int) -> None:
    mode = _LOGVAR_NONE if logvar is None else (_LOGVAR_SCALAR if logvar.numel() == 1 else _LOGVAR_PER_PIXEL)
    _C.cpu.mlp_output(_DTYPES[a.dtype], KINDS.index(kind), code, mode, a.data_ptr(), bias.data_ptr(), x.data_ptr(),
                      0 if logvar is None else logvar.data_ptr(), d.data_ptr(), x.shape[0], n_chains, x.shape[1])


def philox_words(seed: int, items: torch.Tensor, n_chains: int, n_blocks: int, step, stream: int) -> torch.Tensor:
    items = items.to(torch.int64).contiguous()
    words = torch.empty(4, items.numel(), n_chains, n_blocks, dtype=torch.int64)
    _C.cpu.philox_words(seed, items.data_ptr(), items.numel(), n_chains, n_blocks,
                        *scalar_arg("philox_words", "step", step, torch.int64, items.device), stream, words.data_ptr())
    return words
