"""The device-resident transition loop: a clock in device memory, and CUDA-graph replay.

On a GPU the steady state of a run must not wait on the host. Every transition reads the step
index k, β_k and Δβ_k = β_k − β_{k−1} from 0-d tensors on the device (``DeviceClock``), which one
in-place update advances; the fused ops and the keyed random numbers take them as device
scalars (``rdfast.backends.spec``). A transition's kernels are then the same launches with
the same arguments at every step, so on CUDA a block of ``plan.GRAPH_BLOCK`` transitions is
captured once as a CUDA graph and replayed (``TransitionRunner``); the host only wakes between
the segments of ``rdfast.runtime.plan`` to record, start or close a step-size knot, report
progress or checkpoint, all without reading device memory (a checkpoint copies the state out,
and the end of a run reads the results).
Off CUDA, or with ``cuda_graphs=False``, the same clock and body run eagerly, launch by launch.
"""
from __future__ import annotations

import contextlib
import warnings
import weakref

import torch

from .plan import GRAPH_BLOCK, graph_replays

WARMUP_TRANSITIONS = 2  # eager transitions on a side stream before capture: lazy initialisation
# (cuBLAS handles and workspaces, autograd streams, Triton compilation) must not happen in a capture
# Before torch 2.12 a capture that fails can leave the caching allocator believing a capture is
# under way (pytorch#180395), which crashes the process later: there, cuda_graphs=None runs
# eagerly, and only an explicit cuda_graphs=True captures.
SAFE_TO_TRY_TORCH = (2, 12)
_UNCAPTURABLE = weakref.WeakSet()  # decoders whose transition could not be captured (no retry:
# every failed capture keeps its memory pool until the process ends, pytorch#190308)


def _torch_version() -> tuple:
    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def captures_by_default() -> bool:
    """Whether ``cuda_graphs=None`` tries a capture with this torch (SAFE_TO_TRY_TORCH or newer)."""
    return _torch_version() >= SAFE_TO_TRY_TORCH


def graphs_wanted(cuda_graphs: bool | None, device: torch.device, decoder) -> bool | None:
    """The ``cuda_graphs`` setting a run on ``device`` with ``decoder`` should use: None becomes
    False off CUDA, on torch older than SAFE_TO_TRY_TORCH, and for a decoder that failed before."""
    if cuda_graphs is not None:
        return cuda_graphs
    if device.type != "cuda" or not captures_by_default() or decoder in _UNCAPTURABLE:
        return False
    return None


def remember_uncapturable(decoder) -> None:
    """Record that a transition with ``decoder`` could not be captured."""
    try:
        _UNCAPTURABLE.add(decoder)
    except TypeError:  # not weak-referenceable: tried again next time
        pass


class DeviceClock:
    """Step k (int64), β_k and Δβ_k (float64) as 0-d tensors on ``device``; ``advance`` moves
    to step k + 1 with device ops only. betas [T + 1] float64 is the annealing path."""

    def __init__(self, betas: torch.Tensor, k: int, device: torch.device):
        self.betas = betas.to(device=device, dtype=torch.float64)  # [T + 1]
        self.k = torch.full((), k, dtype=torch.int64, device=device)
        self.beta = torch.empty((), dtype=torch.float64, device=device)
        self.dbeta = torch.empty((), dtype=torch.float64, device=device)
        self._offsets = torch.tensor([-1, 0], dtype=torch.int64, device=device)  # [2]
        self._at = torch.empty(2, dtype=torch.int64, device=device)  # [2]: k − 1, k
        self._pair = torch.empty(2, dtype=torch.float64, device=device)  # [2]: β_{k−1}, β_k

    def advance(self) -> None:
        """k ← k + 1;  β ← β_k;  Δβ ← β_k − β_{k−1} (in float64, as the host would compute it)."""
        self.k.add_(1)
        torch.add(self._offsets, self.k, out=self._at)
        torch.index_select(self.betas, 0, self._at, out=self._pair)
        self.beta.copy_(self._pair[1])
        torch.sub(self._pair[1], self._pair[0], out=self.dbeta)


class TransitionRunner:
    """Runs transitions ``body()`` of one batch of items on the clock's device, the clock advanced
    before each (the body reads its k, β_k and Δβ_k tensors).

    ``cuda_graphs``: None (capture on CUDA devices; if capture fails, warn and run eagerly),
    True (capture, and fail if that is impossible) or False (always eager). ``captured`` says
    whether graphs replay the transitions; ``capture_failed`` that a capture was tried and failed
    (the driver then runs later batches eagerly without trying again).
    """

    def __init__(self, body, clock: DeviceClock, cuda_graphs: bool | None):
        self.body, self.clock = body, clock
        self.device = clock.k.device
        on_cuda = self.device.type == "cuda"
        if cuda_graphs is True and not on_cuda:
            raise ValueError(f"cuda_graphs: True needs CUDA tensors, but the data is on {self.device}")
        want_graphs = on_cuda and cuda_graphs is not False
        self.required = cuda_graphs is True
        self.warmup_left = WARMUP_TRANSITIONS if want_graphs else 0
        # warm-up and both captures on one stream of the data's device (not the process-wide
        # default capture stream, which belongs to whichever device was current first)
        self.stream = torch.cuda.Stream(self.device) if want_graphs else None
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.captured = False
        self.capture_failed = False

    def _one(self) -> None:
        self.clock.advance()
        self.body()

    def run(self, n: int) -> None:
        """Make n transitions (from the clock's step k to k + n)."""
        if self.warmup_left and n:
            done = min(n, self.warmup_left)
            self._warm_up(done)
            n -= done
            if not self.warmup_left:
                self._capture()
        if not self.captured:
            # under a guard of the data's device, so that the launches and torch's current stream
            # are that device's whichever device the caller made current
            with torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext():
                for _ in range(n):
                    self._one()
            return
        # the two graphs share a memory pool and replay in any order: safe because replays are
        # serial on one stream and nothing allocated in a capture outlives its transition (the
        # body writes its results in place into tensors made before the capture)
        with torch.cuda.device(self.device):
            for size in graph_replays(n):
                self.graphs[size].replay()

    def _warm_up(self, n: int) -> None:
        """n real transitions on a side stream (the pattern torch.cuda.graphs asks for)."""
        with torch.cuda.device(self.device):
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                for _ in range(n):
                    self._one()
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        self.warmup_left -= n

    def _capture(self) -> None:
        """Capture GRAPH_BLOCK transitions and one transition as two graphs sharing a memory
        pool; nothing runs while capturing, so the state is unchanged whether or not it works."""
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream(self.device)
            try:
                pool = torch.cuda.graph_pool_handle()
                for size in (GRAPH_BLOCK, 1):
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, pool=pool, stream=self.stream):
                        for _ in range(size):
                            self._one()
                    self.graphs[size] = graph
            except Exception as exc:  # noqa: BLE001 - any failure inside a capture means: run eagerly
                torch.cuda.set_stream(current)  # a failed capture can leave its stream current
                self.graphs.clear()
                self.capture_failed = True
                self._give_up(exc)
                return
        self.captured = True

    def _give_up(self, exc: Exception) -> None:
        """After a failed capture: raise if graphs were required, else warn (once per run)."""
        if self.required:
            raise RuntimeError(f"cuda_graphs: could not capture a transition in a CUDA graph ({exc}); the "
                               "decoder must not synchronise with the host (no .item(), .cpu(), printing "
                               "of tensors or data-dependent shapes); pass cuda_graphs=None or False") from exc
        warnings.warn(f"ais: could not capture a transition in a CUDA graph ({exc}); running eagerly "
                      "(pass cuda_graphs=False to skip the attempt)", RuntimeWarning, stacklevel=5)
