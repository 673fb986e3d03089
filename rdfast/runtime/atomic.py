"""Atomic file writes: nothing is lost or half-written if a process dies while saving."""
from __future__ import annotations

import os
import tempfile


def write_atomic(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename it over ``path``."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
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
