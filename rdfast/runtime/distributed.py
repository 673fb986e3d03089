"""Scale-out with torch.distributed: each rank anneals a contiguous shard of the items.

Every random number of a run is keyed by (seed, global item, chain, step) (``rdfast.rng``),
so a rank that anneals items start..stop−1 with ``item_offset=start`` computes exactly what a
single process computes for those items. Joining the shards in rank order therefore gives the
result of one process over all items; the per-item work never communicates.

``distributed`` (the keyword of ``rdfast.ais``, ``rdfast.rd_curve`` and ``rdfast.bdmc``):

* ``None``: shard if a default process group is initialised, else run in this process;
* ``True``: shard; without a process group, initialise one from the environment variables
  torchrun sets (gloo for CPU tensors, nccl for CUDA tensors);
* ``"rank0"``: as ``True``, but only rank 0 receives the result (the others get ``None``);
* ``False``: run all items in this process, even inside a process group.

Every rank passes the same arguments (all the items, not its shard); the seed of rank 0 is
used everywhere, so ``seed=None`` gives one run, not one per rank. Results travel as pickled
CPU objects (``all_gather_object``/``gather_object``): they are small next to the work. A
rank that fails makes every rank raise (no rank waits forever for a result that never comes).
With ``checkpoint``/``resume`` each rank keeps its own file, ``<path>.rank{r}of{W}``, which
only the same number of ranks can resume.
"""
from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist


TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def shard_range(n_items: int, rank: int, world: int) -> tuple[int, int]:
    """Items [start, stop) of ``rank``: contiguous, sizes differ by at most one, the larger first."""
    base, extra = divmod(n_items, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def rank_suffix(path, rank: int, world: int) -> str:
    """The per-rank file name ``<path>.rank{rank}of{world}``."""
    return f"{os.fspath(path)}.rank{rank}of{world}"


def resolve(distributed, device: torch.device) -> "Ranks | None":
    """This process's place among the ranks, or None when the run stays in this process."""
    if not (distributed is None or isinstance(distributed, bool)
            or (isinstance(distributed, str) and distributed == "rank0")):
        raise ValueError(f"distributed: expected None, True, False or 'rank0', got {distributed!r}")
    if distributed is False:
        return None
    if not (dist.is_available() and dist.is_initialized()):
        if distributed is None:
            return None
        init_from_env(device)
    return Ranks(dist.get_rank(), dist.get_world_size(), distributed == "rank0", torch.device(device))


def init_from_env(device: torch.device) -> None:
    """Initialise the default process group from torchrun's environment variables (nccl for
    CUDA ``device``, gloo otherwise); it is destroyed when the interpreter exits."""
    if not dist.is_available():
        raise RuntimeError("distributed: this PyTorch build has no torch.distributed")
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise ValueError(f"distributed: no process group is initialised and {', '.join(missing)} "
                         "are not set; launch with torchrun (docs/distributed.md) or call "
                         "torch.distributed.init_process_group first")
    cuda = torch.device(device).type == "cuda"
    device_id = torch.device(device) if cuda and torch.device(device).index is not None else None
    dist.init_process_group(backend="nccl" if cuda else "gloo", device_id=device_id)
    atexit.register(_destroy)


def _destroy() -> None:
    """Destroy the default process group if it still exists (at interpreter exit)."""
    if dist.is_initialized():
        dist.destroy_process_group()


@dataclass(frozen=True)
class Ranks:
    """This process's rank among ``world`` ranks, the delivery option and the tensors' device."""

    rank: int
    world: int
    rank0_only: bool
    device: torch.device

    def _collective_device(self):
        """nccl stages pickled objects on the current CUDA device: make it this rank's device."""
        return torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()

    def all_gather(self, obj) -> list:
        """``obj`` of every rank, in rank order, on every rank."""
        out = [None] * self.world
        with self._collective_device():
            dist.all_gather_object(out, obj)
        return out

    def gather(self, obj) -> list | None:
        """``obj`` of every rank in rank order: on rank 0 only with "rank0" (None elsewhere), else everywhere."""
        if not self.rank0_only:
            return self.all_gather(obj)
        out = [None] * self.world if self.rank == 0 else None
        with self._collective_device():
            dist.gather_object(obj, out, dst=0)
        return out

    def agree(self, seed: int, n_items: int) -> int:
        """Rank 0's seed, after checking that every rank asks for the same number of items."""
        views = self.all_gather((seed, n_items))
        counts = [n for _, n in views]
        if len(set(counts)) > 1:
            raise ValueError(f"distributed: every rank must pass all the items (rdfast shards them); the ranks "
                             f"passed {counts} items")
        return views[0][0]

    def raise_if_any_failed(self, error: BaseException | None) -> None:
        """Re-raise this rank's ``error``, or raise if another rank failed; returns if none did."""
        messages = self.all_gather(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
        if failed:
            rank, message = failed[0]
            raise RuntimeError(f"distributed: rank {rank} of {self.world} failed ({message}); every rank stops")

    def deliver(self, result):
        """``result`` where it is wanted: None on ranks other than 0 with "rank0"."""
        return None if self.rank0_only and self.rank != 0 else result

    def local_paths(self, checkpoint, resume) -> dict:
        """checkpoint/resume keyword arguments naming this rank's files ``<path>.rank{r}of{W}``."""
        paths = {}
        for name, path in (("checkpoint", checkpoint), ("resume", resume)):
            if path is not None:
                self._check_files(name, os.fspath(path), refuse_own=name == "checkpoint" and resume is None)
                paths[name] = rank_suffix(path, self.rank, self.world)
        return paths

    def _check_files(self, name: str, base: str, refuse_own: bool) -> None:
        """Refuse per-rank files of ``base`` written by a different number of ranks, and with
        ``refuse_own`` (a new checkpoint) this rank's own, as a single process refuses an existing file."""
        own = rank_suffix(base, self.rank, self.world)
        if refuse_own and (os.path.exists(own) or glob.glob(glob.escape(own) + ".*")):
            raise ValueError(f"checkpoint: {own} already exists; pass resume={base!r} (the path without "
                             "the rank suffix) to continue that run, or remove the per-rank files")
        for found in sorted(glob.glob(glob.escape(base) + ".rank*of*")):
            match = re.match(r"\.rank\d+of(\d+)(\.|$)", found[len(base):])
            if match and int(match.group(1)) != self.world:
                raise ValueError(f"{name}: {found} was written by a run on {match.group(1)} ranks, this one has "
                                 f"{self.world}; per-rank checkpoints resume only on as many ranks as wrote them "
                                 "(restart with that many, or remove the files to start afresh)")


def checked_on_every_rank(distributed, device, check):
    """``check()`` (the checks of a call's arguments, before any work), returning its value; inside a
    process group a rank whose checks fail makes every rank raise, so that none waits for it."""
    ranks = resolve(distributed, device)
    if ranks is None:
        return check()
    value, error = None, None
    try:
        value = check()
    except Exception as exc:  # reported to every rank below, then re-raised here
        error = exc
    ranks.raise_if_any_failed(error)
    return value


def map_items(distributed, device, n_items: int, run_items, *, seed: int, checkpoint, resume, assemble):
    """Run ``run_items`` over all items, sharded across ranks when ``distributed`` asks for it.

    ``run_items(start, stop, *, seed, checkpoint=, resume=, show_progress)`` does the work for
    items [start, stop) and returns a part; ``assemble(parts)`` joins the parts of the ranks
    that had items, in rank order. Without ranks this is ``run_items(0, n_items, ...)``. A rank
    with no items runs nothing but takes part in every collective.
    """
    ranks = resolve(distributed, device)
    if ranks is None:
        kwargs = {name: path for name, path in (("checkpoint", checkpoint), ("resume", resume)) if path is not None}
        return run_items(0, n_items, seed=seed, show_progress=True, **kwargs)
    seed = ranks.agree(seed, n_items)
    start, stop = shard_range(n_items, ranks.rank, ranks.world)
    part, error = None, None
    if stop > start:
        try:
            part = run_items(start, stop, seed=seed, show_progress=ranks.rank == 0,
                             **ranks.local_paths(checkpoint, resume))
        except Exception as exc:  # reported to every rank below, then re-raised here
            error = exc
    ranks.raise_if_any_failed(error)
    parts = ranks.gather(part)
    return None if parts is None else assemble([p for p in parts if p is not None])


def join_dicts(parts: list, dim: int = 1) -> dict:
    """One dict from per-shard dicts: tensors concatenated along the item dimension ``dim``,
    other values (the same on every shard) taken from the first."""
    return {name: torch.cat([p[name] for p in parts], dim) if isinstance(value, torch.Tensor) else value
            for name, value in parts[0].items()}
