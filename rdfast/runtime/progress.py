"""A minimal progress line on stderr for long runs: rate and time left, redrawn in place at most
once a second on a terminal, or a new line at most every 15 seconds in a log file."""
from __future__ import annotations

import sys
import time


class Progress:
    """Counts ``total`` units of work; prints ``label: done/total (pct) rate, eta`` when enabled."""

    def __init__(self, total: int, label: str, enabled: bool, stream=None):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 1.0 if self.tty else 15.0
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last >= self.interval or self.done >= self.total:
            self.last = now
            self._print(now)

    def _print(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        start, end = ("\r", "\n" if self.done >= self.total else "") if self.tty else ("", "\n")
        self.stream.write(f"{start}{self.label}: {self.done}/{self.total} ({100.0 * self.done / self.total:.1f}%) "
                          f"{rate:.1f}/s, {elapsed:.0f}s elapsed, eta {eta:.0f}s   {end}")
        self.stream.flush()
