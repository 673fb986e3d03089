"""Launches of the compiled extension ``rdfast._C``, shared by the ``cpu`` and ``cuda`` backends.

``NativeOps.prepare(op, **arguments)`` checks the arguments against ``spec.OPS[op]`` once,
fills the op's argument struct by field name (``csrc/op_args.h``) and returns a launch that
takes no arguments: the driver prepares each op of a transition once and launches it every
transition, so the per-launch cost is one call into the extension. A launch keeps the arrays it
points at alive. ``philox_words`` launches the keyed random-number kernel of either device.
"""
from __future__ import annotations

import torch

from . import spec

try:
    from rdfast import _C
    IMPORT_ERROR = ""
except ImportError as exc:  # the package runs from a source tree without the compiled extension
    _C = None
    IMPORT_ERROR = str(exc)
try:
    from rdfast import _C_cuda  # the CUDA kernels, built per the RDFAST_CUDA option (rdfast.backends.cuda)
    CUDA_IMPORT_ERROR = ""
except ImportError as exc:
    _C_cuda = None
    CUDA_IMPORT_ERROR = str(exc)

_SIZE_FIELDS = {"rows": "B", "dim": "K", "n_items": "N", "size": "P"}  # struct field -> size symbol


def extension_reason() -> str:
    """"" when the compiled extension is importable, else why not."""
    return "" if _C is not None else f"extension rdfast._C is not built ({IMPORT_ERROR})"


def struct(name: str, **fields):
    """An argument struct of the extension (``_C.<name>``) with the given fields set."""
    args = getattr(_C, name)()
    for field, value in fields.items():
        setattr(args, field, value)
    return args


def address(t) -> int:
    return 0 if t is None else t.data_ptr()


def _op_fields(op: str, kw: dict, bound: spec.Bound, args) -> dict:
    """The struct fields of ``op`` beyond its arrays and scalars: sizes (by field name), n_chains,
    the metric layout, and the distortion's kind and log-variance."""
    fields = {name: bound.sizes[symbol] for name, symbol in _SIZE_FIELDS.items() if hasattr(args, name)}
    if hasattr(args, "n_chains"):
        fields["n_chains"] = kw["n_chains"]
    if spec.OPS[op].metric:
        layout, inv_mass, chains = spec.metric_arguments(op, kw["metric"], bound)
        fields.update(metric=int(layout), inv_mass=address(inv_mass), metric_chains=chains)
    if op == "distortion":
        kind = spec.Kind.of(kw["kind"])
        layout = (spec.logvar_layout(kw["logvar"], bound, kw["grad_logvar"]) if kind == spec.Kind.GAUSSIAN_NLL
                  else spec.LogvarLayout.NONE)
        fields.update(kind=int(kind), logvar_layout=int(layout),
                      logvar=address(kw["logvar"] if layout != spec.LogvarLayout.NONE else None),
                      grad_logvar=address(kw["grad_logvar"] if layout == spec.LogvarLayout.PER_ROW else None))
    return fields


class NativeOps:
    """The ops on tensors of one device type, launched through ``launchers`` (``_C.cpu`` or ``_C_cuda``)."""

    def __init__(self, device_type: str, launchers):
        self.device_type = device_type
        self.launchers = launchers

    def prepare(self, op: str, **kw):
        """A launch of ``op`` with these arguments (checked now; nothing is checked at launch)."""
        op_spec = spec.OPS[op]
        kw = spec.call_arguments(op, (), kw)
        arrays = {name: kw[name] for name in op_spec.arrays}
        bound = spec.bind(op, arrays, kw.get("n_chains"))
        if bound.device.type != self.device_type:
            raise ValueError(f"{op}: the {self.device_type} backend got tensors on {bound.device}")
        fields = {name: address(t) for name, t in arrays.items()}
        fields.update({name: spec.scalar(op, name, kw[name], torch.float64, bound.device) for name in op_spec.scalars})
        args = struct(op_spec.struct)
        for name, value in {**fields, **_op_fields(op, kw, bound, args)}.items():
            setattr(args, name, value)
        typed = bound.dtype is not None  # an op with T arrays takes the dtype code
        launch_args = (int(spec.TORCH_DTYPES[bound.dtype]), args) if typed else (args,)
        keep_alive = [t for t in kw.values() if isinstance(t, torch.Tensor)] + [getattr(kw.get("metric"), "inv_mass", None)]
        return self._launch(getattr(self.launchers, op), launch_args, bound.device, keep_alive)

    def _launch(self, launcher, launch_args, device, keep_alive):
        def launch():
            launcher(*launch_args)
        launch.keep_alive = keep_alive
        return launch


def philox_words(seed: int, items: torch.Tensor, n_chains: int, n_blocks: int, step, stream: int) -> torch.Tensor:
    """Philox-4x32-10 words [4, N, M, n_blocks] (int64) for rows (items, chains) × blocks at
    ``step`` (an int or a 0-d int64 tensor on the device of ``items``), by the compiled kernel of
    that device (on CUDA, enqueued on torch's current stream there)."""
    items = items.to(torch.int64).contiguous()
    words = torch.empty(4, items.numel(), n_chains, n_blocks, dtype=torch.int64, device=items.device)
    args = struct("PhiloxArgs", **_key_fields("philox_words", seed, items, n_chains, n_blocks, step, stream),
                  words=words.data_ptr())
    if items.device.type == "cuda":
        with torch.cuda.device(items.device):
            _C_cuda.philox_words(args, torch.cuda.current_stream(items.device).cuda_stream)
    else:
        _C.cpu.philox_words(args)
    return words


def _key_fields(op: str, seed: int, items: torch.Tensor, n_chains: int, n_blocks: int, step, stream: int) -> dict:
    return dict(seed=seed, items=items.data_ptr(), n_items=items.numel(), n_chains=n_chains, n_blocks=n_blocks,
                step=spec.scalar(op, "step", step, torch.int64, items.device), stream=stream)


def normals_launch(seed: int, items: torch.Tensor, n_chains: int, step, stream: int, out: torch.Tensor):
    """A prepared launch writing standard normals [N·M, dim] into ``out`` (contiguous float32/64, CPU)
    for rows (items, chains) at ``step`` (an int, fixed, or a 0-d int64 tensor read at each launch)
    of ``stream``, by the compiled CPU kernel (words as ``philox_words``, Box–Muller as
    rdfast.sampling.rng.normal_twin to 4e-15)."""
    items = items.to(torch.int64).contiguous()
    dim = out.shape[1]
    args = struct("NormalArgs", **_key_fields("philox_normals", seed, items, n_chains, (dim + 3) // 4, step, stream),
                  dim=dim, out=out.data_ptr())
    dtype = int(spec.TORCH_DTYPES[out.dtype])

    def launch():
        _C.cpu.philox_normals(dtype, args)
    launch.keep_alive = (items, out, step)
    return launch


def philox_normals(seed: int, items: torch.Tensor, n_chains: int, dim: int, step, stream: int,
                   dtype: torch.dtype) -> torch.Tensor:
    """Standard normals [N·M, dim] in ``dtype`` (``normals_launch`` into a new tensor)."""
    out = torch.empty(items.numel() * n_chains, dim, dtype=dtype)
    normals_launch(seed, items, n_chains, step, stream, out)()
    return out


def uniforms_launch(seed: int, items: torch.Tensor, n_chains: int, step, stream: int, first: torch.Tensor,
                    second: torch.Tensor = None):
    """A prepared launch writing float64 uniforms [N·M] into ``first`` (words 0, 1 of counter block 0)
    and ``second`` (words 2, 3; optional), bit-identical to rdfast.sampling.rng.uniform(_pair), by
    the compiled CPU kernel; ``step`` as in ``normals_launch``."""
    items = items.to(torch.int64).contiguous()
    args = struct("UniformArgs", **_key_fields("philox_uniforms", seed, items, n_chains, 1, step, stream),
                  first=first.data_ptr(), second=address(second))

    def launch():
        _C.cpu.philox_uniforms(args)
    launch.keep_alive = (items, first, second, step)
    return launch
