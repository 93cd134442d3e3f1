"""Turn SIGTERM and SIGINT into exceptions for the length of a run, and back afterwards.

A signal that arrives while the run's row is being written is held back
until the write is done, so the row is never left half-recorded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from managed_commands.exceptions import CommandTerminated

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """Context manager installing the run's signal handlers (main thread only)."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._deferring = 0
        self._pending: int | None = None

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            # A signal the process chose to ignore stays ignored.
            if previous is signal.SIG_IGN or previous is None:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the handlers that were there before the run back."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self._pending = signum
            return
        self._raise(signum)

    @staticmethod
    def _raise(signum: int) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise CommandTerminated(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold signals back while the block runs; raise the pending one after it."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if not self._deferring and self._pending is not None:
            signum, self._pending = self._pending, None
            self._raise(signum)

    def resend(self, exc: BaseException) -> None:
        """After a run ended by SIGTERM, let the process's own disposition act on it.

        With the default disposition the process dies by the signal, exactly as
        it would have without tracking.
        """
        if isinstance(exc, CommandTerminated):
            self.restore()
            signal.raise_signal(exc.signum)
