"""One writer per file: an exclusive lock held while a run writes its checkpoint.

The lock is ``flock`` on a hidden file beside the target, ``.<name>.lock``, holding the owner's
process id. The kernel drops it when the process ends however it ends (SIGKILL too), so a
stale file never blocks a later run; a second writer is refused at once, before it works.
"""
from __future__ import annotations

import fcntl
import os


def lock_path(path) -> str:
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f".{name}.lock")


class FileLock:
    """The lock of ``path`` for this process; ``argument`` names the path in errors. ``acquire``
    raises ValueError if another writer (another process, or another run in this one) holds it."""

    def __init__(self, path, argument: str):
        self.path, self.argument, self.file, self.fd = os.fspath(path), argument, lock_path(path), None

    def acquire(self) -> "FileLock":
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ValueError(f"{self.argument}: {self.path} is being written by another run (process {owner}); "
                                 "wait for it to end, or choose another path") from None
            try:  # the file may have been unlinked by its last owner between our open and flock
                if os.stat(self.file).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file (still holding the lock, so no one can take a stale one) and unlock."""
        if self.fd is not None:
            os.unlink(self.file)
            os.close(self.fd)
            self.fd = None
