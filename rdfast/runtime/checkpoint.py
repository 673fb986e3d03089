"""Checkpoints of annealing runs: the whole state, written atomically, resumed exactly.

A checkpoint holds the completed item chunks, the state of the chunk in progress (states,
cached d and ∇d, log-weights, step sizes, statistics, records so far, transition index) and
a fingerprint of everything that determines the result (configuration, schedule, data, the
decoder's, prior's and distortion's identity, seed: ``rdfast.runtime.identity``). Random
numbers are keyed by (seed, item, chain, step), so no generator state is needed: a resumed run
computes exactly what the uninterrupted run would. While a run checkpoints it holds its file's
lock (one writer, ``rdfast.runtime.lock``), and SIGTERM or Ctrl-C make it save before it stops
(``rdfast.runtime.signals``).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import time

import torch

from . import identity
from .atomic import as_path, check_writable, remove_orphans, write_atomic
from .lock import FileLock
from .signals import StopSignals
from .validation import is_int, is_real

FORMAT = "rdfast-checkpoint-3"


def fingerprint(config: dict, **inputs) -> str:
    """SHA-256 over the configuration and the identity of every input (``rdfast.runtime.identity``:
    tensors by value; decoders, priors and distortions by their code, settings and weights)."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name in sorted(inputs):
        h.update(name.encode())
        identity.feed(h, inputs[name])
    return h.hexdigest()


def parse_every(every):
    """int -> every that many transitions; float -> every that many seconds (NumPy numbers too)."""
    if not is_real(every) or not every > 0 or every == float("inf"):
        raise ValueError(f"checkpoint_every: expected a positive int (transitions) or float (seconds), got {every!r}")
    return ("transitions", int(every)) if is_int(every) else ("seconds", float(every))


def check_path(name: str, path):
    """``path`` (None, a str or an os.PathLike) as a str or None; TypeError naming ``name`` otherwise."""
    return None if path is None else as_path(name, path)


def exists_any(path: str) -> bool:
    """Whether ``path`` or per-rank files of it (``<path>.rank{r}of{W}``) exist."""
    return os.path.exists(path) or bool(glob.glob(glob.escape(path) + ".rank*of*"))


def save_atomic(obj, path) -> None:
    """torch.save ``obj`` to ``path`` atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def load(path, device) -> dict:
    """Read a checkpoint; a clear ValueError for missing, corrupted or foreign files."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"resume: {path} is a folder; expected the checkpoint file written with checkpoint=")
    if not os.path.exists(path):
        raise ValueError(f"resume: no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # any unpickling/zip failure means the file is unusable
        raise ValueError(f"resume: {path} is not a readable rdfast checkpoint (corrupted or truncated?): {exc}") from exc
    found = data.get("format") if isinstance(data, dict) else None
    if isinstance(found, str) and found.startswith("rdfast-checkpoint-") and found != FORMAT:
        raise ValueError(f"resume: {path} was written by another version of rdfast ({found}; this one reads "
                         f"{FORMAT}); it cannot be continued: start afresh with another checkpoint path")
    if found != FORMAT:
        raise ValueError(f"resume: {path} is not an rdfast checkpoint ({FORMAT})")
    return data


class Checkpointer:
    """Saves and restores the state of one annealing call (a no-op without paths).

    Use it as a context manager: on entry (before any work) it checks the paths, takes the lock
    of the file it writes, clears what interrupted saves left there, computes the fingerprint and
    loads ``resume``; while open, SIGTERM/SIGINT are noted (``asked``) for the run to save and call
    ``stop_if_asked``; on exit the lock is released."""

    def __init__(self, path, every, resume, device, fingerprint_of_run):
        """``fingerprint_of_run()`` hashes the run's inputs; called only when checkpointing."""
        self.every_kind, self.every = parse_every(every)
        self.loaded, self.previous_seconds, self.started = None, 0.0, time.monotonic()
        self.resume = check_path("resume", resume)
        self.path = check_path("checkpoint", path) or self.resume
        self.device, self.fingerprint_of_run, self.fp = device, fingerprint_of_run, None
        self.signals, self.last_time = StopSignals(), time.monotonic()
        self._open = contextlib.ExitStack()

    def __enter__(self) -> "Checkpointer":
        if self.path is None:
            return self
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.signals)  # entered first, left last: after the locks are released
            name = "checkpoint" if self.path != self.resume else "resume"
            check_writable(name, self.path)
            for path, argument in {self.path: name, self.resume: "resume"}.items():
                if path is not None:
                    stack.callback(FileLock(path, argument).acquire().release)
            if self.path != self.resume and os.path.exists(self.path):
                raise ValueError(f"checkpoint: {self.path} already exists; pass resume={self.path!r} to continue that "
                                 "run, or remove the file")
            remove_orphans(self.path)
            self.fp = self.fingerprint_of_run()
            if self.resume is not None:
                self.loaded = load(self.resume, self.device)
                if self.loaded["fingerprint"] != self.fp:
                    raise ValueError(f"resume: {self.resume} was written by a run with different arguments, data, "
                                     "decoder, prior, distortion or seed; it cannot be continued by this call")
                self.previous_seconds = float(self.loaded["seconds"])
            self._open = stack.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._open.__exit__(*exc)

    @property
    def asked_to_stop(self) -> bool:
        """Whether SIGTERM or SIGINT came: the run saves at its next look, then ``stop_if_asked``."""
        return self.signals.asked

    def stop_if_asked(self) -> None:
        """After a signal (and the save it asked for): release the lock and raise the signal again."""
        if self.signals.asked:
            self._open.close()

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
    (or, if finished, returns at once) and one that never started begins afresh, writing to
    ``<checkpoint>.<tag>`` if ``checkpoint`` is given, else beside the file it resumes. Inside a
    process group a run's file may be this rank's ``<base>.<tag>.rank{r}of{W}`` (rdfast.runtime.distributed).
    """
    paths = {}
    if resume is not None and exists_any(f"{os.fspath(resume)}.{tag}"):
        paths["resume"] = f"{os.fspath(resume)}.{tag}"
    if checkpoint is not None:
        paths["checkpoint"] = f"{os.fspath(checkpoint)}.{tag}"
    elif resume is not None and "resume" not in paths:
        paths["checkpoint"] = f"{os.fspath(resume)}.{tag}"
    return paths


def check_parts(checkpoint, resume, tags) -> None:
    """Before a multi-run call works: ``resume`` names the base of files ``<base>.<tag>`` of which
    one at least exists (not one of those files, nor a single run's checkpoint), and a new
    ``checkpoint`` base has none of them yet, in a folder that takes files. ValueError naming the
    argument, with the call that continues the run."""
    resume, checkpoint = check_path("resume", resume), check_path("checkpoint", checkpoint)
    files = ", ".join(f"{{base}}.{tag}" for tag in tags[:2]) + (", ..." if len(tags) > 2 else "")
    if resume is not None and not any(exists_any(f"{resume}.{tag}") for tag in tags):
        base = next((resume[: -len(tag) - 1] for tag in tags if resume.endswith("." + tag)), None)
        if base is not None:
            hint = f"{resume} is the file of one of its runs: pass resume={base!r}"
        elif os.path.isfile(resume):
            hint = f"{resume} itself is a single run's file (rdfast.ais): pass the path given as checkpoint= to this call"
        else:
            hint = "pass the path given as checkpoint= to the run to continue"
        raise ValueError(f"resume: no checkpoint of this call at {resume} (it keeps one file per run: "
                         f"{files.format(base=resume)}); {hint}")
    if checkpoint is not None and checkpoint != resume:
        for tag in tags:
            if exists_any(f"{checkpoint}.{tag}"):
                raise ValueError(f"checkpoint: {checkpoint}.{tag} already exists (a run with checkpoint={checkpoint!r} "
                                 f"began or finished); pass resume={checkpoint!r} to continue it, or choose another path")
    if checkpoint is not None or resume is not None:
        check_writable("checkpoint" if checkpoint is not None else "resume", f"{checkpoint or resume}.{tags[0]}")
