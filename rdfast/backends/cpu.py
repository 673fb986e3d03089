"""C++ backend: the fused ops of ``rdfast.backends.protocol`` on CPU tensors (``rdfast._C``, OpenMP).

Same functions, signatures and results as ``rdfast.backends.reference``. This module also
holds what the CUDA backend shares with it: ``check_args`` (the shapes and dtypes of every
op's arrays, with errors that name the argument) and ``NativeOps`` (checks, then calls a
launcher set of the extension with raw pointers).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

from . import protocol
from .protocol import ADAPT_CODES, KINDS

try:
    from rdfast import _C
    _IMPORT_ERROR = ""
except ImportError as exc:  # the package runs from a source tree without the compiled extension
    _C = None
    _IMPORT_ERROR = str(exc)

name = "cpu"


def unavailable_reason() -> str:
    """"" when this backend can run here, else why not."""
    return "" if _C is not None else f"extension rdfast._C is not built ({_IMPORT_ERROR})"


@dataclass(frozen=True)
class Arg:
    """An array argument: shape in size symbols (N items, B rows, K latent, P data), dtype class
    ("T": the op's float32/float64 compute dtype, "f64", "i64"), written by the op, may be None."""
    shape: str
    dtype: str
    out: bool = False
    optional: bool = False


# The array arguments of each op, in the order their sizes are bound (logvar is special).
SIGNATURES = {
    "distortion": {
        "x": Arg("NP", "T"), "xhat": Arg("BP", "T"), "d": Arg("B", "f64", out=True),
        "grad_xhat": Arg("BP", "T", out=True), "grad_logvar": Arg("BP", "T", out=True, optional=True),
    },
    "leapfrog_begin": {
        "z0": Arg("BK", "T"), "g0": Arg("BK", "T"), "d0": Arg("B", "f64"), "p": Arg("BK", "T", out=True),
        "z": Arg("BK", "T", out=True), "logw": Arg("B", "f64", out=True), "h0": Arg("B", "f64", out=True),
        "eps": Arg("B", "f64"), "prior_energy": Arg("B", "f64", optional=True),
        "prior_grad": Arg("BK", "T", optional=True),
    },
    "leapfrog_step": {
        "z": Arg("BK", "T", out=True), "g": Arg("BK", "T"), "p": Arg("BK", "T", out=True),
        "eps": Arg("B", "f64"), "prior_grad": Arg("BK", "T", optional=True),
    },
    "leapfrog_end": {
        "z": Arg("BK", "T"), "g": Arg("BK", "T"), "p": Arg("BK", "T", out=True),
        "eps": Arg("B", "f64"), "prior_grad": Arg("BK", "T", optional=True),
    },
    "metropolis": {
        "z0": Arg("BK", "T", out=True), "g0": Arg("BK", "T", out=True), "d0": Arg("B", "f64", out=True),
        "z": Arg("BK", "T"), "g": Arg("BK", "T"), "d": Arg("B", "f64"), "p": Arg("BK", "T"),
        "h0": Arg("B", "f64"), "u": Arg("B", "f64"), "eps": Arg("B", "f64", out=True),
        "accept_stat": Arg("B", "f64", out=True), "n_accept": Arg("B", "i64", out=True),
        "n_diverge": Arg("B", "i64", out=True), "prior_energy": Arg("B", "f64", optional=True),
    },
    "record": {
        "logw": Arg("B", "f64"), "d": Arg("B", "f64"), "log_z": Arg("N", "f64", out=True),
        "dist": Arg("N", "f64", out=True), "ess": Arg("N", "f64", out=True),
    },
}

# codes shared with csrc/op_args.h (DType, LogvarMode; Kind is the index in KINDS) and
# csrc/rdfast_rowmath.h (Adapt is protocol.ADAPT_CODES)
DTYPE_CODES = {getattr(torch, name): code for name, code in protocol.DTYPE_CODES.items()}
_LOGVAR_NONE, _LOGVAR_SCALAR, _LOGVAR_PER_PIXEL, _LOGVAR_PER_ROW = range(4)
_FIXED_DTYPES = {"f64": torch.float64, "i64": torch.int64}


def check_args(op: str, arrays: dict, n_chains: int | None = None):
    """Check ``arrays`` (name -> tensor or None) against ``SIGNATURES[op]``.

    All must be contiguous tensors on one device with consistent sizes; rows B = N·M when
    ``n_chains`` M is given. Returns (compute dtype T or None, {symbol: size}, device).
    Raises TypeError / ValueError naming the op and the argument.
    """
    sizes: dict[str, int] = {}
    dtype = device = None
    if n_chains is not None:
        if isinstance(n_chains, bool) or not isinstance(n_chains, numbers.Integral) or n_chains < 1:
            raise ValueError(f"{op}: n_chains must be a positive int, got {n_chains!r}")
        n_chains = int(n_chains)
    for arg_name, arg in SIGNATURES[op].items():
        t = arrays[arg_name]
        if t is None:
            if arg.optional:
                continue
            raise TypeError(f"{op}: {arg_name} is required, got None")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {arg_name} must be a torch.Tensor, got {type(t).__name__}")
        if device is None:
            device = t.device
        elif t.device != device:
            raise ValueError(f"{op}: {arg_name} is on {t.device}, the other arrays on {device}")
        if arg.dtype == "T":
            if dtype is None:
                if t.dtype not in DTYPE_CODES:
                    raise TypeError(f"{op}: {arg_name} must be float32 or float64, got {t.dtype}")
                dtype = t.dtype
            elif t.dtype != dtype:
                raise TypeError(f"{op}: {arg_name} must be {dtype} like the other data arrays, got {t.dtype}")
        elif t.dtype != _FIXED_DTYPES[arg.dtype]:
            raise TypeError(f"{op}: {arg_name} must be {_FIXED_DTYPES[arg.dtype]}, got {t.dtype}")
        if t.dim() != len(arg.shape):
            raise ValueError(f"{op}: {arg_name} must have shape [{', '.join(arg.shape)}], got {list(t.shape)}")
        for symbol, size in zip(arg.shape, t.shape):
            if sizes.setdefault(symbol, size) != size:
                expected = [sizes.get(s, s) for s in arg.shape]
                raise ValueError(f"{op}: {arg_name} must have shape [{', '.join(arg.shape)}] = {expected}, "
                                 f"got {list(t.shape)}")
        if n_chains is not None:
            _bind_rows(op, arg_name, sizes, n_chains)
        if not t.is_contiguous():
            raise ValueError(f"{op}: {arg_name} must be contiguous (strides {t.stride()})")
    return dtype, sizes, device


def _bind_rows(op, arg_name, sizes, n_chains):
    """Bind B = N·M or N = B / M as soon as one of them is known."""
    if "N" in sizes and "B" not in sizes:
        sizes["B"] = sizes["N"] * n_chains
    elif "B" in sizes and "N" not in sizes:
        if sizes["B"] % n_chains:
            raise ValueError(f"{op}: {arg_name} has {sizes['B']} rows, not a multiple of n_chains={n_chains}")
        sizes["N"] = sizes["B"] // n_chains


def logvar_mode(logvar, dtype, sizes, device, grad_logvar):
    """The logvar layout code (none, [1] or 0-d, [P], [B, P]) after checking it and grad_logvar."""
    if logvar is None:
        return _LOGVAR_NONE
    if not isinstance(logvar, torch.Tensor):
        raise TypeError(f"distortion: logvar must be a torch.Tensor or None, got {type(logvar).__name__}")
    if logvar.dtype != dtype or logvar.device != device:
        raise TypeError(f"distortion: logvar must be {dtype} on {device} like xhat, "
                        f"got {logvar.dtype} on {logvar.device}")
    if not logvar.is_contiguous():
        raise ValueError(f"distortion: logvar must be contiguous (strides {logvar.stride()})")
    shape = list(logvar.shape)
    if logvar.numel() == 1 and logvar.dim() <= 1:
        return _LOGVAR_SCALAR
    if shape == [sizes["P"]]:
        return _LOGVAR_PER_PIXEL
    if shape == [sizes["B"], sizes["P"]]:
        if grad_logvar is None:
            raise TypeError("distortion: grad_logvar [B, P] is required when logvar is per row [B, P]")
        return _LOGVAR_PER_ROW
    raise ValueError(f"distortion: logvar must have shape [1], [P] = [{sizes['P']}] or "
                     f"[B, P] = [{sizes['B']}, {sizes['P']}], got {shape}")


def _ptr(t) -> int:
    return 0 if t is None else t.data_ptr()


def scalar_arg(op: str, arg_name: str, value, dtype: torch.dtype, device: torch.device) -> tuple:
    """(value, address) of a scalar launcher argument: a Python number goes by value; a 0-d
    tensor of ``dtype`` on the arrays' device goes by address and is read by the kernel, so the
    call does not synchronise and a captured CUDA graph reads its current value."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype != dtype or value.device != device:
            raise TypeError(f"{op}: {arg_name} must be a number or a 0-d {dtype} tensor on {device}, got a "
                            f"{value.dtype} tensor of shape {list(value.shape)} on {value.device}")
        return (0.0 if dtype.is_floating_point else 0), value.data_ptr()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {arg_name} must be a number or a 0-d {dtype} tensor, got {type(value).__name__}")
    return (float(value) if dtype.is_floating_point else int(value)), 0


def _adapt_code(adapt) -> int:
    if adapt in ADAPT_CODES.values():
        return int(adapt)
    codes = sorted(set(ADAPT_CODES.values()))
    raise ValueError(f"metropolis: adapt must be one of the codes {codes}, got {adapt!r}")


class NativeOps:
    """The six ops on tensors of one device type, launched through ``launchers`` (``_C.cpu``)."""

    def __init__(self, device_type: str, launchers):
        self.device_type = device_type
        self.launchers = launchers

    def _check(self, op, arrays, n_chains=None):
        dtype, sizes, device = check_args(op, arrays, n_chains)
        if device.type != self.device_type:
            raise ValueError(f"{op}: the {self.device_type} backend got tensors on {device}")
        return dtype, sizes, device

    def _launch(self, op, device, *args):
        """Run launcher ``op``; the CUDA backend overrides this to add device and stream."""
        getattr(self.launchers, op)(*args)

    def distortion(self, kind, x, xhat, logvar, d, grad_xhat, grad_logvar, n_chains):
        """d [B] and ∂d/∂x̂ [B, P] (and ∂d/∂v for logvar [B, P]); see reference.distortion."""
        if kind not in KINDS:
            raise ValueError(f"distortion: kind must be one of {KINDS}, got {kind!r}")
        dtype, sizes, device = self._check("distortion", dict(
            x=x, xhat=xhat, d=d, grad_xhat=grad_xhat, grad_logvar=grad_logvar), n_chains)
        mode = logvar_mode(logvar, dtype, sizes, device, grad_logvar) if kind == "gaussian_nll" else _LOGVAR_NONE
        self._launch("distortion", device, DTYPE_CODES[dtype], KINDS.index(kind), mode, _ptr(x), _ptr(xhat),
                     _ptr(logvar if mode else None), _ptr(d), _ptr(grad_xhat),
                     _ptr(grad_logvar if mode == _LOGVAR_PER_ROW else None),
                     sizes["N"], n_chains, sizes["P"])

    def leapfrog_begin(self, z0, g0, d0, p, z, logw, h0, beta, dbeta, eps, prior_energy=None, prior_grad=None):
        """logw −= Δβ·d0; h0 = U(z0) + ½‖p‖²; p −= ½ε∇U(z0); z = z0 + εp."""
        dtype, sizes, device = self._check("leapfrog_begin", dict(
            z0=z0, g0=g0, d0=d0, p=p, z=z, logw=logw, h0=h0, eps=eps,
            prior_energy=prior_energy, prior_grad=prior_grad))
        self._launch("leapfrog_begin", device, DTYPE_CODES[dtype], _ptr(z0), _ptr(g0), _ptr(d0), _ptr(p), _ptr(z),
                     _ptr(logw), _ptr(h0), *scalar_arg("leapfrog_begin", "beta", beta, torch.float64, device),
                     *scalar_arg("leapfrog_begin", "dbeta", dbeta, torch.float64, device), _ptr(eps),
                     _ptr(prior_energy), _ptr(prior_grad), sizes["B"], sizes["K"])

    def leapfrog_step(self, z, g, p, beta, eps, prior_grad=None):
        """p −= ε∇U(z); z += εp."""
        self._kick("leapfrog_step", z, g, p, beta, eps, prior_grad)

    def leapfrog_end(self, z, g, p, beta, eps, prior_grad=None):
        """p −= ½ε∇U(z)."""
        self._kick("leapfrog_end", z, g, p, beta, eps, prior_grad)

    def _kick(self, op, z, g, p, beta, eps, prior_grad):
        dtype, sizes, device = self._check(op, dict(z=z, g=g, p=p, eps=eps, prior_grad=prior_grad))
        self._launch(op, device, DTYPE_CODES[dtype], _ptr(z), _ptr(g), _ptr(p),
                     *scalar_arg(op, "beta", beta, torch.float64, device), _ptr(eps), _ptr(prior_grad),
                     sizes["B"], sizes["K"])

    def metropolis(self, z0, g0, d0, z, g, d, p, h0, u, beta, eps, accept_stat, n_accept, n_diverge,
                   adapt, target, t, prior_energy=None):
        """Accept iff H1 finite and log u < h0 − H1; select rows; statistics; adapt ε."""
        dtype, sizes, device = self._check("metropolis", dict(
            z0=z0, g0=g0, d0=d0, z=z, g=g, d=d, p=p, h0=h0, u=u, eps=eps, accept_stat=accept_stat,
            n_accept=n_accept, n_diverge=n_diverge, prior_energy=prior_energy))
        beta_arg = scalar_arg("metropolis", "beta", beta, torch.float64, device)
        t_arg = scalar_arg("metropolis", "t", t, torch.int64, device)
        if not t_arg[1] and t_arg[0] < 1:  # a t in memory is the caller's to keep >= 1
            raise ValueError(f"metropolis: t counts transitions including this one and must be >= 1, got {t!r}")
        self._launch("metropolis", device, DTYPE_CODES[dtype], _ptr(z0), _ptr(g0), _ptr(d0), _ptr(z), _ptr(g),
                     _ptr(d), _ptr(p), _ptr(h0), _ptr(u), *beta_arg, _ptr(eps), _ptr(accept_stat), _ptr(n_accept),
                     _ptr(n_diverge), _adapt_code(adapt), float(target), *t_arg, _ptr(prior_energy),
                     sizes["B"], sizes["K"])

    def record(self, logw, d, n_chains, log_z, dist, ess):
        """Per item log Ẑ, D̂, ESS [N] from log w and d [B]."""
        _, sizes, device = self._check("record", dict(logw=logw, d=d, log_z=log_z, dist=dist, ess=ess), n_chains)
        self._launch("record", device, _ptr(logw), _ptr(d), _ptr(log_z), _ptr(dist), _ptr(ess),
                     sizes["N"], n_chains)


_ops = NativeOps("cpu", _C.cpu if _C is not None else None)
distortion = _ops.distortion
leapfrog_begin = _ops.leapfrog_begin
leapfrog_step = _ops.leapfrog_step
leapfrog_end = _ops.leapfrog_end
metropolis = _ops.metropolis
record = _ops.record
