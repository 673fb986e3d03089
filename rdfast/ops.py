"""The fused per-chain operations of rdfast as a public low-level API (the "drop-in backend").

Front ends other than rdfast's own (JAX, CuPy, NumPy, or a custom PyTorch loop) call these
six functions on their own arrays: torch tensors, NumPy arrays, or any object with
``__dlpack__`` or ``__array_interface__``. Arrays are wrapped without copying; outputs are
written in place, so they must be writable, contiguous and of the stated dtype and shape
(an error names the argument otherwise: nothing is ever copied behind your back). Each call
runs on the arrays' device with the compiled backend (``cpu`` or ``cuda``), or with the torch
reference when the extension is not built. The contract of every op is
``rdfast.backends.spec.OPS``. The metric is the identity (kinetic energy ½‖p‖²) unless
``inv_mass`` [N, K] gives a diagonal M⁻¹ per item (K(p) = ½ Σ m p², drift z += ε m ⊙ p; row r
reads inv_mass[r // M] with M = B / N); its entries must be positive and finite (checked for
host arrays; on a GPU a check would wait for the device).

Shapes: N items, M chains per item, B = N·M rows in data-major order (row r = n·M + m),
K latent numbers, P data numbers per item. ``T`` is float32 or float64 (data, decoder
outputs, states, momenta, gradients); per-row scalars are float64; counters int64.
Potential U(z) = E(z) + β d(z) with E = ½‖z‖² (standard normal prior) unless
``prior_energy`` [B] and ``prior_grad`` [B, K] are given; g = ∇_z d.

The scalars β and Δβ (float64) are numbers, or 0-d arrays on the arrays' device: those are read
by the kernel when it runs, so a device-resident loop never synchronises with the host and a
CUDA graph that captured the call follows their current values.
"""
from __future__ import annotations

import ctypes
import math
import warnings

import numpy as np
import torch

from .backends import spec
from .backends.spec import KINDS
from .runtime.validation import is_real

__all__ = ["distortion", "leapfrog_begin", "leapfrog_step", "leapfrog_end", "metropolis", "record", "KINDS"]


def distortion(kind, x, xhat, logvar, d, grad_xhat, grad_logvar, n_chains):
    """Distortion of every row and its gradient, in one pass.

    x [N, P] T; xhat [B, P] T (row r reads x[r // M]); logvar None | [1] | [P] | [B, P] T;
    writes d [B] f64, grad_xhat [B, P] T and, for logvar [B, P], grad_logvar [B, P] T.
    """
    _run("distortion", kind=kind, x=x, xhat=xhat, logvar=logvar, d=d, grad_xhat=grad_xhat, grad_logvar=grad_logvar,
         n_chains=n_chains)


def leapfrog_begin(z0, g0, d0, p, z, logw, h0, beta, dbeta, eps, prior_energy=None, prior_grad=None, inv_mass=None):
    """Start a transition: weight update, initial energy, first half kick and first drift.

    z0, g0 [B, K] T (state and its g); d0 [B] f64; p [B, K] T (fresh momenta, updated);
    z [B, K] T (written); logw [B] f64 (updated); h0 [B] f64 (written); eps [B] f64;
    beta, dbeta: β_k and β_k − β_{k−1} (numbers or 0-d float64 arrays).
    """
    _run("leapfrog_begin", z0=z0, g0=g0, d0=d0, p=p, z=z, logw=logw, h0=h0, beta=beta, dbeta=dbeta, eps=eps,
         prior_energy=prior_energy, prior_grad=prior_grad, metric=inv_mass)


def leapfrog_step(z, g, p, beta, eps, prior_grad=None, inv_mass=None):
    """A full kick then a drift.

    z [B, K] T (updated); g [B, K] T (∇d at z); p [B, K] T (updated); eps [B] f64.
    """
    _run("leapfrog_step", z=z, g=g, p=p, beta=beta, eps=eps, prior_grad=prior_grad, metric=inv_mass)


def leapfrog_end(z, g, p, beta, eps, prior_grad=None):
    """The final half kick.  z, g [B, K] T; p [B, K] T (updated); eps [B] f64."""
    _run("leapfrog_end", z=z, g=g, p=p, beta=beta, eps=eps, prior_grad=prior_grad)


def metropolis(z0, g0, d0, z, g, d, p, h0, u, beta, accepted, accept_prob, n_accept, n_diverge, prior_energy=None,
               inv_mass=None):
    """End a transition: accept or reject the proposal (z, g, d, p), row by row, in place.
    Step-size adaptation is the caller's (it reads accepted or accept_prob).

    z0, g0 [B, K] T, d0 [B] f64 (current state, updated); z, g, p [B, K] T, d [B] f64
    (proposal); h0, u [B] f64; accepted, accept_prob [B] f64 and n_accept, n_diverge [B] int64.
    """
    _run("metropolis", z0=z0, g0=g0, d0=d0, z=z, g=g, d=d, p=p, h0=h0, u=u, beta=beta, accepted=accepted,
         accept_prob=accept_prob, n_accept=n_accept, n_diverge=n_diverge, prior_energy=prior_energy, metric=inv_mass)


def record(logw, d, n_chains, log_z, dist, ess):
    """Per-item estimates from the M chains of each item (all float64).

    logw, d [B]; writes log_z, dist, ess [N].
    """
    _run("record", logw=logw, d=d, n_chains=n_chains, log_z=log_z, dist=dist, ess=ess)


for _name in ("distortion", "leapfrog_begin", "leapfrog_step", "leapfrog_end", "metropolis", "record"):
    globals()[_name].__doc__ += "\n    " + spec.OPS[_name].doc + "\n"  # the formulas: one text, the spec's


# ---- arrays in, backend out -----------------------------------------------------------

def _run(op, **kw):
    """Wrap the arrays as torch tensors without copying, check them (``spec.bind``) and run the
    compiled backend of their device, else the torch reference."""
    arrays = spec.OPS[op].arrays
    for name, value in kw.items():
        if name in arrays or name == "logvar":
            kw[name] = _tensor(op, name, value, out=name in arrays and arrays[name].out)
        elif name in spec.OPS[op].scalars:
            kw[name] = _scalar(op, name, value)
    bound = spec.bind(op, {name: kw.get(name) for name in arrays}, kw.get("n_chains"))
    if kw.get("metric") is not None:
        kw["metric"] = _diagonal_metric(op, _tensor(op, "inv_mass", kw["metric"], out=False), bound)
    _backend(bound.device).prepare(op, **kw)()


def _diagonal_metric(op, inv_mass, bound):
    """``inv_mass`` [N, K] as the diagonal metric of rows B = N·M (M = B / N), values checked on the host."""
    from .sampling.metrics import DiagonalMetric

    B = bound.sizes["B"]
    if inv_mass.dim() != 2 or inv_mass.shape[0] == 0 or B % inv_mass.shape[0]:
        raise ValueError(f"{op}: inv_mass must have shape [N, K] with N dividing the {B} rows, got {list(inv_mass.shape)}")
    if inv_mass.device.type == "cpu" and not (torch.isfinite(inv_mass) & (inv_mass > 0)).all():
        raise ValueError(f"{op}: inv_mass must be positive and finite")
    metric = DiagonalMetric(inv_mass, B // inv_mass.shape[0])
    spec.metric_arguments(op, metric, bound)  # dtype, device, K: errors name metric.inv_mass
    return metric


def _tensor(op, name, a, out):
    """A zero-copy torch view of ``a``; an output must be writable."""
    if a is None or isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray):
        return _from_numpy(op, name, a, out)
    if hasattr(a, "__array_interface__"):
        if out and a.__array_interface__["data"][1]:
            raise ValueError(f"{op}: {name} is an output and must be writable, but it is read-only")
        return _from_numpy(op, name, np.asarray(a), out)
    if hasattr(a, "__dlpack__"):
        if out and _dlpack_read_only(a):
            raise ValueError(f"{op}: {name} is an output and must be writable, but its __dlpack__ marks it read-only")
        return torch.from_dlpack(a)
    raise TypeError(f"{op}: {name} must be a torch tensor, a NumPy array, or an object with __dlpack__ "
                    f"or __array_interface__; got {type(a).__name__}")


def _scalar(op, name, value):
    """A finite number as a float, or a 0-d float64 array as a zero-copy tensor, read at launch
    (its value is checked on the host only: on a GPU a check would wait for the device)."""
    if is_real(value):
        if not math.isfinite(value):
            raise ValueError(f"{op}: {name} must be finite, got {value!r}")
        return float(value)
    t = _tensor(op, name, value, out=False)
    spec.scalar(op, name, t, torch.float64, t.device)  # 0-d float64, or a TypeError naming it
    if t.device.type == "cpu" and not math.isfinite(t.item()):
        raise ValueError(f"{op}: {name} must be finite, got {t.item()!r}")
    return t


_get_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_capsule_pointer.restype, _get_capsule_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_DLPACK_FLAGS_OFFSET = 24  # DLManagedTensorVersioned: version (2 x u32), manager_ctx, deleter, then u64 flags
_DLPACK_READ_ONLY = 1


def _dlpack_read_only(a) -> bool:
    """Whether ``a`` exports itself read-only through DLPack ≥ 1.0 (older producers cannot say)."""
    try:
        capsule = a.__dlpack__(max_version=(1, 0))
    except TypeError:  # a producer before DLPack 1.0: no read-only flag
        return False
    except BufferError:  # e.g. NumPy refuses to export a read-only array to an old consumer
        return True
    try:
        pointer = _get_capsule_pointer(capsule, b"dltensor_versioned")
    except ValueError:  # an unversioned capsule
        return False
    return bool(ctypes.c_uint64.from_address(pointer + _DLPACK_FLAGS_OFFSET).value & _DLPACK_READ_ONLY)


def _from_numpy(op, name, a, out):
    if out and not a.flags.writeable:
        raise ValueError(f"{op}: {name} is an output and must be writable, but it is read-only")
    with warnings.catch_warnings():  # torch warns that it cannot protect read-only inputs
        warnings.simplefilter("ignore", UserWarning)
        try:
            return torch.from_numpy(a)
        except (TypeError, ValueError) as exc:  # unsupported dtype, negative strides, byte order
            raise ValueError(f"{op}: {name} cannot be used without a copy ({exc})") from None


def _backend(device: torch.device):
    """The compiled backend of ``device``, else the torch reference."""
    from . import backends

    for name in ("cpu", "cuda"):
        if device.type == name and backends.runs(name, device):
            return backends.get(name, device)
    return backends.get("torch", device)
