"""CUDA backend: the fused ops of ``rdfast.backends.spec`` on CUDA tensors (``rdfast._C_cuda``).

Same functions, signatures and results as ``rdfast.backends.reference``; kernels are enqueued
on torch's current stream of the tensors' device at launch time, so nothing synchronises and a
prepared launch can be captured in a CUDA graph on any stream.

The module is built per the RDFAST_CUDA option (docs/gpu.md); ``build_info.json`` beside
``rdfast._C`` records whether it was built and why not. It holds code for the CUDA architectures
it records (``architectures``): GPU code (SASS) for sm_XY runs on compute capability X.Z with
Z ≥ Y, PTX for compute_XY is compiled by the driver for any capability ≥ X.Y. A GPU that neither
covers is refused before any launch (``device_reason``), naming its capability and how to rebuild.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch

from . import native

name = "cuda"
METRIC_LAYOUTS = frozenset(native.spec.MetricLayout)


class Arch(NamedTuple):
    """One CUDA architecture of the build, compute capability major.minor: GPU code (``sass``,
    CMake's "80-real"), PTX (``ptx``, "90-virtual") or both ("86")."""

    major: int
    minor: int
    sass: bool
    ptx: bool

    @classmethod
    def parse(cls, text: str) -> Arch:
        number, _, kind = text.partition("-")
        return cls(int(number) // 10, int(number) % 10, kind != "virtual", kind != "real")

    def runs_on(self, capability: tuple[int, int]) -> bool:
        """Whether this code runs on a GPU of compute capability ``capability`` (major, minor)."""
        major, minor = capability
        same_major = major == self.major and minor >= self.minor
        return (self.sass and same_major) or (self.ptx and tuple(capability) >= (self.major, self.minor))

    def __str__(self) -> str:
        code = [f"sm_{self.major}{self.minor}"] if self.sass else []
        return " + ".join(code + ([f"compute_{self.major}{self.minor}"] if self.ptx else []))


def build_record() -> dict:
    """What the build recorded in build_info.json: {"RDFAST_CUDA": "auto", "on" or "off",
    "cuda_built": bool, "cuda_reason": why not}; {} without the compiled extension or the record."""
    if native._C is None:
        return {}
    try:
        return json.loads(Path(native._C.__file__).with_name("build_info.json").read_text())
    except FileNotFoundError:
        return {}


def architectures() -> tuple[Arch, ...]:
    """The CUDA architectures the kernels were compiled for; () without the CUDA module."""
    if native._C_cuda is None:
        return ()
    return tuple(Arch.parse(text) for text in native._C_cuda.architectures.split(","))


def unavailable_reason() -> str:
    """"" when this backend can run here (on at least one of the GPUs), else why not."""
    if native.extension_reason():
        return native.extension_reason()
    if native._C_cuda is None:
        record = build_record()
        if record.get("cuda_built") is False:
            return f"rdfast was built without its CUDA kernels: {record['cuda_reason']} (docs/gpu.md: RDFAST_CUDA)"
        return f"the CUDA module rdfast._C_cuda does not import ({native.CUDA_IMPORT_ERROR})"
    if native._C_cuda.device_count() == 0:
        return f"no CUDA device ({native._C_cuda.device_status()})"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} cannot use CUDA"
    reasons = [device_reason(torch.device("cuda", index)) for index in range(torch.cuda.device_count())]
    return "; ".join(dict.fromkeys(reasons)) if all(reasons) else ""


def device_reason(device: torch.device) -> str:
    """"" when the kernels have code for the CUDA device ``device`` (on a machine where this
    backend is available), else its compute capability, the code the build has, and how to
    rebuild with code for it."""
    major, minor = torch.cuda.get_device_capability(device)
    built = architectures()
    if any(arch.runs_on((major, minor)) for arch in built):
        return ""
    listed = native._C_cuda.architectures.replace(",", ";")
    return (f"compute capability {major}.{minor} (sm_{major}{minor}) has no code in this build, which has "
            f"{', '.join(map(str, built))}: rebuild with an nvcc that supports sm_{major}{minor}, e.g. "
            f"pip install -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=\"{major}{minor}-real;{listed}\" . (docs/gpu.md)")


def describe() -> list[tuple[str, str]]:
    """(label, text) lines for ``rdfast backends``: the CUDA kernels of this build, the driver,
    and each GPU with its compute capability and whether the kernels run on it."""
    if native._C_cuda is None:
        return [("CUDA kernels", unavailable_reason())]
    record = build_record()
    lines = [("CUDA kernels", f"built by nvcc {native._C_cuda.nvcc_version} (RDFAST_CUDA="
                              f"{record.get('RDFAST_CUDA', '?')}) for {', '.join(map(str, architectures()))}")]
    driver = native._C_cuda.driver_version()
    lines.append(("CUDA driver", f"{driver // 1000}.{driver % 1000 // 10}" if driver else "none"))
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            device = torch.device("cuda", index)
            major, minor = torch.cuda.get_device_capability(device)
            verdict = device_reason(device) or "the CUDA kernels run on it"
            lines.append((f"GPU {device}", f"{torch.cuda.get_device_name(device)}, sm_{major}{minor}: {verdict}"))
    return lines


class CudaOps(native.NativeOps):
    """Launches on the tensors' device, on torch's current stream there at launch time."""

    def _launch(self, launcher, launch_args, device, keep_alive):
        def launch():
            with torch.cuda.device(device):
                launcher(*launch_args, torch.cuda.current_stream(device).cuda_stream)
        launch.keep_alive = keep_alive
        return launch


_ops = CudaOps("cuda", native._C_cuda)
prepare = _ops.prepare
globals().update(native.spec.op_functions(prepare))
