"""Checkpoints of annealing runs: the whole state, written atomically, resumed exactly.

A checkpoint holds the completed item chunks, the state of the chunk in progress (states,
cached d and ∇d, log-weights, step sizes, statistics, records so far, transition index) and
a fingerprint of everything that determines the result (configuration, schedule, data,
decoder weights, seed). Random numbers are keyed by (seed, item, chain, step), so no
generator state is needed: a resumed run computes exactly what the uninterrupted run would.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import torch

from .atomic import write_atomic
from .distributed import rank_path

FORMAT = "rdfast-checkpoint-2"


def _tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().numpy().tobytes()


def fingerprint(config: dict, decoder=None, **tensors) -> str:
    """SHA-256 over the configuration, the given tensors and the decoder's parameters/buffers."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            h.update(str((t.dtype, tuple(t.shape))).encode() + _tensor_bytes(t))
        else:
            h.update(repr(t).encode())
    if isinstance(decoder, torch.nn.Module):
        for name, t in decoder.state_dict().items():
            h.update(name.encode() + str((t.dtype, tuple(t.shape))).encode() + _tensor_bytes(t))
    else:
        h.update(getattr(decoder, "__name__", type(decoder).__name__).encode())  # weights unknown: name only
    return h.hexdigest()


def parse_every(every):
    """int -> every that many transitions; float -> every that many seconds."""
    if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
        raise ValueError(f"checkpoint_every: expected a positive int (transitions) or float (seconds), got {every!r}")
    return ("transitions", every) if isinstance(every, int) else ("seconds", float(every))


def save_atomic(obj, path) -> None:
    """torch.save ``obj`` to ``path`` atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def load(path, device) -> dict:
    """Read a checkpoint; a clear ValueError for missing, corrupted or foreign files."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"resume: no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # any unpickling/zip failure means the file is unusable
        raise ValueError(f"resume: {path} is not a readable rdfast checkpoint (corrupted or truncated?): {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"resume: {path} is not an rdfast checkpoint ({FORMAT})")
    return data


class Checkpointer:
    """Saves and restores the state of one annealing call (a no-op without paths)."""

    def __init__(self, path, every, resume, device, fingerprint_of_run):
        """``fingerprint_of_run()`` hashes the run's inputs; called only when checkpointing."""
        self.every_kind, self.every = parse_every(every)
        self.loaded, self.previous_seconds, self.started = None, 0.0, time.monotonic()
        self.fp = fingerprint_of_run() if (path is not None or resume is not None) else None
        if resume is not None:
            self.loaded = load(resume, device)
            if self.loaded["fingerprint"] != self.fp:
                raise ValueError(f"resume: {os.fspath(resume)} was written by a run with different arguments, data, "
                                 "decoder weights or seed; it cannot be continued by this call")
            self.previous_seconds = float(self.loaded["seconds"])
            path = resume if path is None else path
        elif path is not None and os.path.exists(path):
            raise ValueError(f"checkpoint: {os.fspath(path)} already exists; pass resume={os.fspath(path)!r} to "
                             "continue that run, or remove the file")
        self.path = path
        self.last_time = time.monotonic()

    def completed_parts(self) -> list:
        return [] if self.loaded is None else list(self.loaded["parts"])

    def resume_state(self, offset: int):
        """The saved state of the chunk starting at item ``offset``, if that is where it stopped."""
        if self.loaded is None or self.loaded["state"] is None or self.loaded["offset"] != offset:
            return None
        state, self.loaded["state"] = self.loaded["state"], None
        return state

    @property
    def every_transitions(self) -> int | None:
        """A checkpoint is due after this many transitions (None: by seconds, or no checkpoints);
        the driver's plan stops there to save."""
        return self.every if self.path is not None and self.every_kind == "transitions" else None

    def due_by_time(self) -> bool:
        """Whether a checkpoint by seconds is due."""
        return self.path is not None and self.every_kind == "seconds" and \
            time.monotonic() - self.last_time >= self.every

    def save(self, parts, offset, state, seconds: float) -> None:
        if self.path is None:
            return
        save_atomic({"format": FORMAT, "fingerprint": self.fp, "parts": parts, "offset": offset,
                     "state": state, "seconds": seconds}, self.path)
        self.last_time = time.monotonic()


def part_paths(checkpoint, resume, tag: str) -> dict:
    """checkpoint/resume keyword arguments for one run (``tag``) of a multi-run call.

    Each run keeps its own file ``<base>.<tag>``; on resume a run whose file exists continues
    (or, if finished, returns at once) and one that never started begins afresh. Inside a
    process group a run's file may be this rank's ``<base>.<tag>.rank{r}of{W}`` (rdfast.runtime.distributed).
    """
    if resume is not None:
        path = f"{os.fspath(resume)}.{tag}"
        return {"resume": path} if os.path.exists(path) or os.path.exists(rank_path(path)) else {"checkpoint": path}
    if checkpoint is not None:
        return {"checkpoint": f"{os.fspath(checkpoint)}.{tag}"}
    return {}
