"""The op spec: the fused, in-place per-chain operations every backend implements, and the one
check of their arguments that every backend and ``rdfast.ops`` runs.

Arrays are flat and hold ``B = N·M`` rows in data-major order (row ``r = n·M + m``: the ``M``
chains of item ``n`` are contiguous). Data ``x [N, P]`` is read as ``x[r // M]``, never tiled.
``T`` (float32 or float64) is the dtype of data, decoder outputs, states ``z``, momenta ``p``
and gradients; per-row scalars (distortions, energies, log-weights, step sizes, accept
indicators and probabilities) are float64; counters are int64. Random numbers are inputs.

Potential ``U(z) = E(z) + β d(z)`` with prior energy ``E = ½‖z‖²`` and ``∇E = z`` for the
standard normal, fused; other priors pass ``prior_energy`` [B] (−log p) and ``prior_grad``
[B, K] (−∇log p). ``g = ∇_z d`` is each row's cached gradient. The metric (inverse mass matrix
``M⁻¹``) gives the kinetic energy ``K(p) = ½ pᵀM⁻¹p`` and the drift ``z += ε M⁻¹p``; ops that
need it take ``metric``, an object of ``rdfast.sampling.metrics`` (None: the identity). The
compiled backends fuse the layouts in ``MetricLayout``; the reference computes any metric from
its own methods. ``rdfast.backends.reference`` is the normative twin of every op.

Scalars ``beta`` (β_k) and ``dbeta`` (Δβ_k = β_k − β_{k−1}) are numbers or 0-d float64 tensors on
the arrays' device; a tensor is read by the kernel when it runs, so a call never waits on the
host and a CUDA graph that captured it follows the tensor's current value
(``rdfast.runtime.device_loop``).

The ops (formulas per row; ``OPS[name].doc`` holds them for each backend's docstrings):
"""
from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass

import torch


class Kind(enum.IntEnum):
    """Built-in distortions with a fused value-and-gradient kernel (``rdfast.sampling.distortions``)."""

    GAUSSIAN_NLL = 0
    BERNOULLI_NLL = 1
    SQUARED_ERROR = 2

    @property
    def key(self) -> str:
        """The name users pass: "gaussian_nll", ..."""
        return self.name.lower()

    @classmethod
    def of(cls, name: str) -> "Kind":
        if name not in KINDS:
            raise ValueError(f"distortion: kind must be one of {KINDS}, got {name!r}")
        return cls[name.upper()]


KINDS = tuple(kind.key for kind in Kind)


class LogvarLayout(enum.IntEnum):
    """How gaussian_nll's log-variance is laid out: none (v = 0), [1], [P] shared, or [B, P] per row."""

    NONE = 0
    SCALAR = 1
    PER_PIXEL = 2
    PER_ROW = 3


class MetricLayout(enum.IntEnum):
    """The metrics the compiled kernels fuse."""

    IDENTITY = 0  # M⁻¹ = I
    DIAGONAL = 1  # M⁻¹ = diag(inv_mass[n]) [N, K] per item, shared by its chains


class DType(enum.IntEnum):
    """The compute dtype T of the compiled launchers."""

    FLOAT32 = 0
    FLOAT64 = 1


TORCH_DTYPES = {torch.float32: DType.FLOAT32, torch.float64: DType.FLOAT64}
LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Array:
    """An array argument: shape in size symbols (N items, B rows, K latent, P data); dtype class
    ("T": the op's float32/float64 compute dtype, "f64", "i64"); written by the op; may be None."""

    shape: str
    dtype: str
    out: bool = False
    optional: bool = False


@dataclass(frozen=True)
class OpSpec:
    """One fused op: its parameters in call order, its arrays (launch order), its float64 scalars
    (β, Δβ), whether it takes a metric, the formula it computes, its argument struct in
    csrc/op_args.h and the module of ``rdfast.kernels`` that holds its Triton kernel (and
    ``prepare_<name>``, the launch of it)."""

    name: str
    struct: str
    kernels: str
    params: tuple
    arrays: dict
    scalars: tuple = ()
    metric: bool = False
    doc: str = ""


OPS = {op.name: op for op in (
    OpSpec("distortion", "DistortionArgs", "distortion",
           ("kind", "x", "xhat", "logvar", "d", "grad_xhat", "grad_logvar", "n_chains"), {
        "x": Array("NP", "T"), "xhat": Array("BP", "T"), "d": Array("B", "f64", out=True),
        "grad_xhat": Array("BP", "T", out=True), "grad_logvar": Array("BP", "T", out=True, optional=True),
    }, doc="""d [B] and ∂d/∂x̂ [B, P] in one pass (and ∂d/∂v [B, P] for a per-row log-variance v);
    ``kind`` one of KINDS, ``logvar`` None | [1] | [P] | [B, P] (gaussian_nll only), ``n_chains`` M:
      gaussian_nll:  d = ½ Σ_j (x_j − x̂_j)² e^{−v_j} + v_j + log 2π  (logvar None: v = 0)
                     ∂d/∂x̂ = (x̂ − x) e^{−v};  ∂d/∂v = ½ (1 − (x − x̂)² e^{−v})
      bernoulli_nll: d = Σ_j softplus(x̂_j) − x_j x̂_j  (x̂ are logits);  ∂d/∂x̂ = σ(x̂) − x
      squared_error: d = Σ_j (x_j − x̂_j)²;  ∂d/∂x̂ = 2 (x̂ − x)"""),
    OpSpec("leapfrog_begin", "LeapfrogBeginArgs", "leapfrog",
           ("z0", "g0", "d0", "p", "z", "logw", "h0", "beta", "dbeta", "eps", "metric", "prior_energy", "prior_grad"), {
        "z0": Array("BK", "T"), "g0": Array("BK", "T"), "d0": Array("B", "f64"), "p": Array("BK", "T", out=True),
        "z": Array("BK", "T", out=True), "logw": Array("B", "f64", out=True), "h0": Array("B", "f64", out=True),
        "eps": Array("B", "f64"), "prior_energy": Array("B", "f64", optional=True),
        "prior_grad": Array("BK", "T", optional=True),
    }, scalars=("beta", "dbeta"), metric=True, doc="""Start a transition at the current state (z0, g0, d0)
    with fresh momenta p: logw −= Δβ·d0;  h0 = E(z0) + β d0 + K(p);  p −= ½ε ∇U(z0);  z = z0 + ε M⁻¹p."""),
    OpSpec("leapfrog_step", "LeapfrogArgs", "leapfrog", ("z", "g", "p", "beta", "eps", "metric", "prior_grad"), {
        "z": Array("BK", "T", out=True), "g": Array("BK", "T"), "p": Array("BK", "T", out=True),
        "eps": Array("B", "f64"), "prior_grad": Array("BK", "T", optional=True),
    }, scalars=("beta",), metric=True, doc="""A full kick, then a drift: p −= ε ∇U(z);  z += ε M⁻¹p."""),
    OpSpec("leapfrog_end", "LeapfrogArgs", "leapfrog", ("z", "g", "p", "beta", "eps", "prior_grad"), {
        "z": Array("BK", "T"), "g": Array("BK", "T"), "p": Array("BK", "T", out=True),
        "eps": Array("B", "f64"), "prior_grad": Array("BK", "T", optional=True),
    }, scalars=("beta",), doc="""The final half kick: p −= ½ε ∇U(z)."""),
    OpSpec("metropolis", "MetropolisArgs", "metropolis",
           ("z0", "g0", "d0", "z", "g", "d", "p", "h0", "u", "beta", "accepted", "accept_prob", "n_accept", "n_diverge",
            "metric", "prior_energy"), {
        "z0": Array("BK", "T", out=True), "g0": Array("BK", "T", out=True), "d0": Array("B", "f64", out=True),
        "z": Array("BK", "T"), "g": Array("BK", "T"), "d": Array("B", "f64"), "p": Array("BK", "T"),
        "h0": Array("B", "f64"), "u": Array("B", "f64"), "accepted": Array("B", "f64", out=True),
        "accept_prob": Array("B", "f64", out=True), "n_accept": Array("B", "i64", out=True),
        "n_diverge": Array("B", "i64", out=True), "prior_energy": Array("B", "f64", optional=True),
    }, scalars=("beta",), metric=True, doc="""End a transition: H1 = E(z) + β d + K(p); a non-finite H1 is a
    divergence (n_diverge += 1) and a rejection; accept iff log u < h0 − H1. Accepted rows copy
    (z, g, d) into (z0, g0, d0) by selection (never a blend: a rejected NaN cannot leak).
    accepted = 1 or 0;  accept_prob = min(1, e^{h0 − H1}) (0 for a divergence);  n_accept += accepted.
    (A non-finite gradient at the proposal makes the final momentum, and so H1, non-finite.)"""),
    OpSpec("record", "RecordArgs", "record", ("logw", "d", "n_chains", "log_z", "dist", "ess"), {
        "logw": Array("B", "f64"), "d": Array("B", "f64"), "log_z": Array("N", "f64", out=True),
        "dist": Array("N", "f64", out=True), "ess": Array("N", "f64", out=True),
    }, doc="""Per item from its M chains (``n_chains``): log Ẑ = logsumexp_m log w − log M;
    w̃ = softmax_m log w;  D̂ = Σ_m w̃ d (chains of zero weight add 0 even where d is not finite);
    ESS = 1 / Σ_m w̃². An item whose log-weights are all −inf gets log Ẑ = −inf."""),
)}
__doc__ += "".join(f"\n``{op.name}({', '.join(op.params)})``\n    {op.doc}\n" for op in OPS.values())
OPTIONAL = ("metric", "prior_energy", "prior_grad", "grad_logvar", "logvar")  # parameters that may be left out (None)


def call_arguments(op: str, args: tuple, kwargs: dict) -> dict:
    """The arguments of a call of ``op`` by name (positional ones in ``OPS[op].params`` order;
    optional ones default to None). TypeError for missing or unknown ones."""
    params = OPS[op].params
    if len(args) > len(params):
        raise TypeError(f"{op}: takes {len(params)} arguments ({', '.join(params)}), got {len(args)}")
    out = dict(zip(params, args))
    for name, value in kwargs.items():
        if name not in params:
            raise TypeError(f"{op}: unexpected argument {name!r} (it takes {', '.join(params)})")
        if name in out:
            raise TypeError(f"{op}: {name} given twice")
        out[name] = value
    missing = [name for name in params if name not in out and name not in OPTIONAL]
    if missing:
        raise TypeError(f"{op}: missing {', '.join(missing)}")
    if "kind" in out:
        Kind.of(out["kind"])
    return {name: out.get(name) for name in params}

_FIXED_DTYPES = {"f64": torch.float64, "i64": torch.int64}


@dataclass(frozen=True)
class Bound:
    """Checked arguments of one call: compute dtype T (None if the op has no T array), the size of
    each symbol, and the device of the arrays."""

    dtype: torch.dtype | None
    sizes: dict
    device: torch.device


def check_n_chains(op: str, n_chains) -> int:
    if isinstance(n_chains, bool) or not isinstance(n_chains, numbers.Integral) or n_chains < 1:
        raise ValueError(f"{op}: n_chains must be a positive int, got {n_chains!r}")
    return int(n_chains)


def bind(op: str, arrays: dict, n_chains: int | None = None) -> Bound:
    """Check ``arrays`` (name -> tensor or None) against ``OPS[op]``: contiguous tensors on one
    device, dtypes and consistent sizes (rows B = N·M when ``n_chains`` M is given). Raises
    TypeError / ValueError naming the op and the argument."""
    sizes: dict[str, int] = {}
    dtype = device = None
    if n_chains is not None:
        n_chains = check_n_chains(op, n_chains)
    for name, arg in OPS[op].arrays.items():
        t = arrays.get(name)
        if t is None:
            if arg.optional:
                continue
            raise TypeError(f"{op}: {name} is required, got None")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if device is None:
            device = t.device
        elif t.device != device:
            raise ValueError(f"{op}: {name} is on {t.device}, the other arrays on {device}")
        if arg.dtype == "T":
            if dtype is None:
                if t.dtype not in TORCH_DTYPES:
                    raise TypeError(f"{op}: {name} must be float32 or float64, got {t.dtype}")
                dtype = t.dtype
            elif t.dtype != dtype:
                raise TypeError(f"{op}: {name} must be {dtype} like the other data arrays, got {t.dtype}")
        elif t.dtype != _FIXED_DTYPES[arg.dtype]:
            raise TypeError(f"{op}: {name} must be {_FIXED_DTYPES[arg.dtype]}, got {t.dtype}")
        if t.dim() != len(arg.shape):
            raise ValueError(f"{op}: {name} must have shape [{', '.join(arg.shape)}], got {list(t.shape)}")
        for symbol, size in zip(arg.shape, t.shape):
            if sizes.setdefault(symbol, size) != size:
                expected = [sizes.get(s, s) for s in arg.shape]
                raise ValueError(f"{op}: {name} must have shape [{', '.join(arg.shape)}] = {expected}, "
                                 f"got {list(t.shape)}")
        if n_chains is not None:
            _bind_rows(op, name, sizes, n_chains)
        if not t.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous (strides {t.stride()})")
    return Bound(dtype, sizes, device)


def _bind_rows(op, name, sizes, n_chains):
    """Bind B = N·M or N = B / M as soon as one of them is known."""
    if "N" in sizes and "B" not in sizes:
        sizes["B"] = sizes["N"] * n_chains
    elif "B" in sizes and "N" not in sizes:
        if sizes["B"] % n_chains:
            raise ValueError(f"{op}: {name} has {sizes['B']} rows, not a multiple of n_chains={n_chains}")
        sizes["N"] = sizes["B"] // n_chains


def logvar_layout(logvar, bound: Bound, grad_logvar) -> LogvarLayout:
    """The layout of gaussian_nll's ``logvar`` (None, [1] or 0-d, [P], [B, P]) after checking it
    and ``grad_logvar`` against the bound arrays."""
    if logvar is None:
        return LogvarLayout.NONE
    if not isinstance(logvar, torch.Tensor):
        raise TypeError(f"distortion: logvar must be a torch.Tensor or None, got {type(logvar).__name__}")
    if logvar.dtype != bound.dtype or logvar.device != bound.device:
        raise TypeError(f"distortion: logvar must be {bound.dtype} on {bound.device} like xhat, "
                        f"got {logvar.dtype} on {logvar.device}")
    if not logvar.is_contiguous():
        raise ValueError(f"distortion: logvar must be contiguous (strides {logvar.stride()})")
    shape, sizes = list(logvar.shape), bound.sizes
    if logvar.numel() == 1 and logvar.dim() <= 1:
        return LogvarLayout.SCALAR
    if shape == [sizes["P"]]:
        return LogvarLayout.PER_PIXEL
    if shape == [sizes["B"], sizes["P"]]:
        if grad_logvar is None:
            raise TypeError("distortion: grad_logvar [B, P] is required when logvar is per row [B, P]")
        return LogvarLayout.PER_ROW
    raise ValueError(f"distortion: logvar must have shape [1], [P] = [{sizes['P']}] or "
                     f"[B, P] = [{sizes['B']}, {sizes['P']}], got {shape}")


def metric_layout(op: str, metric) -> MetricLayout:
    """The fused layout of ``metric`` (None: the identity); TypeError for one no kernel fuses."""
    if metric is None:
        return MetricLayout.IDENTITY
    layout = getattr(metric, "layout", None)
    if not isinstance(layout, MetricLayout):
        raise TypeError(f"{op}: metric {type(metric).__name__} has no fused kernel (its layout is {layout!r}); "
                        "run it on the reference backend")
    return layout


def metric_arguments(op: str, metric, bound: Bound) -> tuple:
    """(layout, inv_mass or None, chains per item) of ``metric`` for the fused kernels, checked
    against the bound arrays: a diagonal metric's ``inv_mass`` is a contiguous [N, K] tensor of
    the compute dtype on their device, one row per item of ``n_chains`` rows."""
    layout = metric_layout(op, metric)
    if layout == MetricLayout.IDENTITY:
        return layout, None, 1
    inv, M = metric.inv_mass, metric.n_chains
    B, K = bound.sizes["B"], bound.sizes["K"]
    if not isinstance(inv, torch.Tensor) or inv.dtype != bound.dtype or inv.device != bound.device:
        raise TypeError(f"{op}: metric.inv_mass must be a {bound.dtype} tensor on {bound.device}, got "
                        f"{getattr(inv, 'dtype', type(inv).__name__)} on {getattr(inv, 'device', None)}")
    if inv.dim() != 2 or inv.shape[1] != K or inv.shape[0] * M != B or not inv.is_contiguous():
        raise ValueError(f"{op}: metric.inv_mass must be contiguous with shape [N, K] = [{B // M}, {K}] "
                         f"({B} rows of {M} chains per item), got {list(inv.shape)}")
    return layout, inv, M


def scalar(op: str, name: str, value, dtype: torch.dtype, device: torch.device) -> tuple:
    """(value, address) of a scalar launcher argument: a Python number goes by value (address 0);
    a 0-d tensor of ``dtype`` on the arrays' device goes by address and is read by the kernel."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype != dtype or value.device != device:
            raise TypeError(f"{op}: {name} must be a number or a 0-d {dtype} tensor on {device}, got a "
                            f"{value.dtype} tensor of shape {list(value.shape)} on {value.device}")
        return (0.0 if dtype.is_floating_point else 0), value.data_ptr()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number or a 0-d {dtype} tensor, got {type(value).__name__}")
    return (float(value) if dtype.is_floating_point else int(value)), 0


def op_functions(prepare) -> dict:
    """The op functions (``distortion``, ...) of a backend whose ``prepare(op, **arguments)``
    returns launches: each call prepares (checks) its arguments, then launches once."""
    def function(op):
        def call(*args, **kwargs):
            prepare(op, **call_arguments(op, args, kwargs))()
        call.__name__ = call.__qualname__ = op
        call.__doc__ = OPS[op].doc
        return call
    return {op: function(op) for op in OPS}
