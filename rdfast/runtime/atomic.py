"""Atomic file writes: nothing is lost or half-written if a process dies while saving.

A write goes to a hidden temporary file beside its target, ``.<name>.tmp-<random>``, created with
mode 0666 less the umask (as ``open`` creates files), then renamed over the target. A process
killed mid-write leaves only such a file; ``remove_orphans`` clears them on the next start.
"""
from __future__ import annotations

import glob
import os
import secrets


def _temp_prefix(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp-")


def write_atomic(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename it over ``path``."""
    path = os.fspath(path)
    tmp = _temp_prefix(path) + secrets.token_hex(6)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_orphans(path) -> list[str]:
    """Delete the temporary files that interrupted writes of ``path`` left behind; returns their paths.
    Call it only while no other process writes ``path`` (``rdfast.runtime.lock``)."""
    orphans = glob.glob(glob.escape(_temp_prefix(os.fspath(path))) + "*")
    for orphan in orphans:
        os.unlink(orphan)
    return orphans


def as_path(name: str, path) -> str:
    """``path`` (a str or an os.PathLike) as a str; TypeError naming ``name`` otherwise."""
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str) or not os.fspath(path):
        raise TypeError(f"{name}: expected a file path (a nonempty str or os.PathLike), got {path!r}")
    return os.fspath(path)


def check_writable(name: str, path) -> str:
    """``path`` as a str after checking, before any work, that a file can be written there: a path,
    not a folder, in a folder that exists and takes new files. ValueError/TypeError naming ``name``."""
    path = as_path(name, path)
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path} is a folder; expected the path of a file (e.g. {os.path.join(path, 'run.ckpt')})")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: the folder {folder} does not exist; create it first")
    probe = _temp_prefix(path) + "probe-" + secrets.token_hex(6)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{name}: cannot write files in {folder} ({exc.strerror})") from None
    return path
