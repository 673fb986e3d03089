"""The compiled CPU kernels of the MLP fast path (``rdfast._C.cpu``), as prepared launches, and
their pure-PyTorch twins (``*_twin``), which the tests compare them with.

``available()`` says whether this build has them. ``bias_act`` and ``mlp_output`` return a
launch on fixed contiguous CPU tensors (the evaluator's own buffers, made once), checked by
their callers (``rdfast.fastpath.mlp`` builds every argument itself):

    bias_act(act, param, a, bias)           a ← φ(a + b) in place        a [R, W], bias [W]
    act_backward(act, param, delta, h)      δ ← δ ⊙ φ'(a) in place,      delta, h [R, W]
                                            from h = φ(a)
    mlp_output(kind, act, a, bias, x,       h = φ(a + b), x̂ = s·h + c; d [B] and
               logvar, d, n_chains, s, c)   δ = ∂d/∂x̂ · s · φ'(h) into a
                                            a [B, P], x [N, P], logvar [1] | [P] | None

``param`` is the leaky ReLU's negative slope or ELU's α; ``kind`` any built-in distortion with a
fixed log-variance (rdfast.backends.reference.distortion gives d and ∂d/∂x̂).

``mlp_program`` runs a whole evaluation in one call (csrc/cpu_mlp_program.h): the products by
torch's own BLAS ``?gemm_``, found by ``blas_gemm`` (None where torch's CPU BLAS is not MKL's
LP64 interface on Linux: the evaluator then makes the same steps in torch ops).
"""
from __future__ import annotations

import ctypes
import enum
import functools
import os
import sys

import torch

from ..backends import native, reference
from ..backends.spec import TORCH_DTYPES, Kind, LogvarLayout


class Activation(enum.IntEnum):
    """Activations the compiled kernels know (csrc/cpu_mlp.h's MlpActivation)."""

    IDENTITY = 0
    TANH = 1
    SIGMOID = 2
    RELU = 3
    LEAKY_RELU = 4
    ELU = 5


OUTPUT_ACTIVATIONS = (Activation.IDENTITY, Activation.TANH, Activation.SIGMOID)


def available() -> bool:
    return native._C is not None


def bias_act(act: Activation, param: float, a: torch.Tensor, bias: torch.Tensor):
    args = native.struct("BiasActArgs", act=int(act), param=param, a=a.data_ptr(), bias=bias.data_ptr(),
                         rows=a.shape[0], width=a.shape[1])
    return _launch(native._C.cpu.mlp_bias_act, int(TORCH_DTYPES[a.dtype]), args, (a, bias))


def act_backward(act: Activation, param: float, delta: torch.Tensor, h: torch.Tensor):
    args = native.struct("ActBackwardArgs", act=int(act), param=param, delta=delta.data_ptr(), h=h.data_ptr(),
                         rows=delta.shape[0], width=delta.shape[1])
    return _launch(native._C.cpu.mlp_act_backward, int(TORCH_DTYPES[delta.dtype]), args, (delta, h))


def _output_args(kind: str, act: Activation, a, bias, x, logvar, d, n_chains: int, scale: float, shift: float):
    layout = (LogvarLayout.NONE if logvar is None else
              LogvarLayout.SCALAR if logvar.numel() == 1 else LogvarLayout.PER_PIXEL)
    return native.struct("MlpOutputArgs", kind=int(Kind.of(kind)), act=int(act), logvar_layout=int(layout),
                         scale=scale, shift=shift, a=a.data_ptr(), bias=bias.data_ptr(), x=x.data_ptr(),
                         logvar=native.address(logvar), d=native.address(d), n_items=x.shape[0],
                         n_chains=n_chains, size=x.shape[1])


def mlp_output(kind: str, act: Activation, a, bias, x, logvar, d, n_chains: int, scale: float = 1.0,
               shift: float = 0.0):
    args = _output_args(kind, act, a, bias, x, logvar, d, n_chains, scale, shift)
    return _launch(native._C.cpu.mlp_output, int(TORCH_DTYPES[a.dtype]), args, (a, bias, x, logvar, d))


@functools.lru_cache(maxsize=None)
def _torch_blas() -> dict:
    """{dtype: address} of the Fortran ?gemm_ in torch's CPU library, where torch's BLAS is MKL
    (torch links MKL's LP64 interface: 32-bit integer arguments)."""
    config = torch.__config__.show()
    if sys.platform != "linux" or "BLAS_INFO=mkl" not in config:
        return {}
    try:  # already loaded by torch: RTLD_NOLOAD only finds it
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"),
                          mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return {}
    found = {}
    for dtype, name in ((torch.float32, "sgemm_"), (torch.float64, "dgemm_")):
        fn = getattr(lib, name, None)
        if fn is not None:
            found[dtype] = ctypes.cast(fn, ctypes.c_void_p).value
    return found


def blas_gemm(dtype: torch.dtype):
    """The address of torch's BLAS ?gemm_ for ``dtype``, or None."""
    return _torch_blas().get(dtype) if available() else None


def mlp_program(trunk, head, output: dict, rows: int):
    """A launch ``run(z, g, d)`` of the whole evaluation: ``trunk`` [(weight [out, in], h [R, out],
    delta [R, out], act, param, bias [out])] and ``head`` (weight [P, in], delta [R, P]) with its
    output kernel's arguments ``output`` (mlp_output's, without a and d). Contiguous CPU tensors of
    one dtype with a ``blas_gemm``; z [R, K], g [R, K] and d [R] float64 contiguous at each run."""
    def layer(weight, h, delta, act, param, bias):
        return native.struct("MlpLayerArgs", weight=weight.data_ptr(), **{"in": weight.shape[1]}, out=weight.shape[0],
                             h=native.address(h), delta=delta.data_ptr(), act=int(act), param=param,
                             bias=native.address(bias))
    head_weight, head_delta = head
    layers = [layer(*spec) for spec in trunk] + [layer(head_weight, None, head_delta, Activation.IDENTITY, 0.0, None)]
    args = _output_args(a=head_delta, d=None, **output)
    program = native._C.cpu.MlpProgram(int(TORCH_DTYPES[head_delta.dtype]), blas_gemm(head_delta.dtype), rows,
                                       layers, args)

    def run(z: torch.Tensor, g: torch.Tensor, d: torch.Tensor) -> None:
        program.run(z.data_ptr(), g.data_ptr(), d.data_ptr())
    run.keep_alive = (trunk, head, output)
    return run


def _launch(launcher, dtype: int, args, keep_alive):
    def launch():
        launcher(dtype, args)
    launch.keep_alive = keep_alive
    return launch


def activation_twin(act: Activation, param: float, a: torch.Tensor) -> torch.Tensor:
    """φ(a) in torch ops."""
    F = torch.nn.functional
    return {Activation.IDENTITY: lambda: a.clone(), Activation.TANH: lambda: torch.tanh(a),
            Activation.SIGMOID: lambda: torch.sigmoid(a), Activation.RELU: lambda: torch.relu(a),
            Activation.LEAKY_RELU: lambda: F.leaky_relu(a, param), Activation.ELU: lambda: F.elu(a, param)}[act]()


def bias_act_twin(act: Activation, param: float, a: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """What ``bias_act`` writes: φ(a + b) [R, W]."""
    return activation_twin(act, param, a + bias)


def act_backward_twin(act: Activation, param: float, delta: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """What ``act_backward`` writes: δ ⊙ φ'(a) [R, W] by torch's backward ops from the output h."""
    aten = torch.ops.aten
    return {Activation.IDENTITY: lambda: delta.clone(), Activation.TANH: lambda: aten.tanh_backward(delta, h),
            Activation.SIGMOID: lambda: aten.sigmoid_backward(delta, h),
            Activation.RELU: lambda: aten.threshold_backward(delta, h, 0),
            Activation.LEAKY_RELU: lambda: aten.leaky_relu_backward(delta, h, param, True),
            Activation.ELU: lambda: aten.elu_backward(delta, param, 1.0, 1.0, True, h)}[act]()


def mlp_output_twin(kind: str, act: Activation, a, bias, x, logvar, n_chains: int, scale: float = 1.0,
                    shift: float = 0.0):
    """What ``mlp_output`` writes: (d [B] float64, δ [B, P]), from the reference distortion."""
    h = activation_twin(act, 0.0, a + bias)
    xhat = h * scale + shift
    d = torch.empty(a.shape[0], dtype=torch.float64, device=a.device)
    grad = torch.empty_like(xhat)
    reference.distortion(kind, x, xhat, logvar, d, grad, None, n_chains)
    slope = {Activation.IDENTITY: torch.ones_like(h), Activation.TANH: 1 - h * h, Activation.SIGMOID: h * (1 - h)}[act]
    return d, grad * scale * slope
