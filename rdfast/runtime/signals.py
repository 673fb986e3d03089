"""SIGTERM and Ctrl-C (SIGINT) during a checkpointed run: save first, then stop as usual.

While a ``StopSignals`` is active, the first of these signals is only noted; the run saves a
checkpoint at its next look (at most ``plan.SEGMENT_MAX`` transitions later) and calls
``stop_if_asked``, which puts the previous handlers back and raises the signal again, so the
process ends (SIGTERM) or raises KeyboardInterrupt (SIGINT) as it would have. A second signal
before that acts at once. Handlers can only be set in the main thread: elsewhere, and for a
signal that is ignored or handled outside Python, nothing changes.
"""
from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Notes SIGTERM/SIGINT while active (a context manager); ``asked`` says whether one came."""

    def __init__(self):
        self.previous, self.received = {}, None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                handler = signal.getsignal(signum)
                if handler is not None and handler is not signal.SIG_IGN:
                    self.previous[signum] = handler
                    signal.signal(signum, self._note)
        return self

    def _note(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
        else:  # a second signal: no more waiting
            self._restore()
            signal.raise_signal(signum)

    @property
    def asked(self) -> bool:
        return self.received is not None

    def _restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def stop_if_asked(self) -> None:
        """If a signal came: the previous handlers back, and the signal raised again for them."""
        if self.received is not None:
            signum, self.received = self.received, None
            self._restore()
            signal.raise_signal(signum)

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.stop_if_asked()  # a signal at the very end: the run is saved, stop now
        self._restore()
