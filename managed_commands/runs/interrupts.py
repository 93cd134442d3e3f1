"""Turn SIGTERM and SIGINT into exceptions for the length of a run, and back afterwards.

A signal that arrives while the run's row is being written is held back
until the write is done, so the row is never left half-recorded. The
``StopRun`` exceptions below are control flow inside a run only: the run
records them as its end and turns them into the public errors of
``managed_commands.exceptions`` (or, for SIGTERM, into the signal itself).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_SIGNALS = (int(signal.SIGINT), int(signal.SIGTERM))


class StopRun(BaseException):
    """Raised inside a run to stop it as SIGTERM would; its message is the end its row records.

    A ``BaseException``, so that the command's own ``except Exception`` does not swallow it.
    """


class StopBySignal(StopRun):
    """The process received SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"Terminated by {signal.Signals(signum).name}.")
        self.signum = signum


class StopAsRequested(StopRun):
    """``stop_managed_command`` asked the run to stop; raised after a batch (``RunStopped``)."""


class StopAtTimeLimit(StopRun):
    """The run reached its ``time_limit`` (``TimeLimitReached``)."""


class StopOnTakeover(StopRun):
    """The run's claim was taken over while it ran (``ClaimLost``, once its end finds it so)."""

    def __init__(self) -> None:
        super().__init__("Stopped: its claim was taken over by another run.")


class InterruptGuard:
    """Context manager installing the run's signal handlers (main thread only).

    Args:
        chain: Call the handler that was there first (a task worker's graceful
            shutdown) before stopping the run, and never re-send the signal:
            the process is the worker's, which decides how to end.
    """

    def __init__(self, chain: bool = False) -> None:
        self._chain = chain
        self._previous: dict[int, Any] = {}
        self._deferring = 0
        self._pending: int | None = None
        self._deferral = _Deferral(self)
        # Guards the handlers between the run's thread and stop() from another.
        self._handlers = threading.Lock()
        self._stop_reason: BaseException | None = None
        self._ending = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            # A signal the process chose to ignore stays ignored.
            if previous is None or previous == signal.SIG_IGN:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the handlers that were there before the run back."""
        with self._handlers:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous.clear()

    def stop(self, reason: BaseException, then: Callable[[], None] | None = None) -> bool:
        """From another thread, stop the run as SIGTERM would, raising ``reason`` in it.

        ``then`` runs once the signal is sent and before the run can record
        its end (``ending()`` waits for it): a cancel of the statement the run
        waits on never reaches the writes of its end.

        Returns False when the run cannot be interrupted (it does not run in
        the main thread, or SIGTERM is ignored there).
        """
        with self._handlers:
            if signal.SIGTERM not in self._previous or self._ending:
                return False
            self._stop_reason = reason
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
            if then is not None:
                then()
            return True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous.get(signum)
        if self._chain and callable(previous) and self._stop_reason is None:
            previous(signum, frame)  # may raise (a second Ctrl-C, sys.exit): the run ends then
        if self._deferring:
            self._pending = signum
            return
        self._raise(signum)

    def ending(self) -> None:
        """The run is recording its end: a stop() from now on, or still on its way, does nothing.

        Its end, written after, tells the truth anyway.
        """
        with self._handlers:
            self._ending = True

    def _raise(self, signum: int) -> None:
        if self._stop_reason is not None and signum == signal.SIGTERM:
            if self._ending:
                return
            raise self._stop_reason
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise StopBySignal(signum)

    def deferred(self) -> _Deferral:
        """Hold signals back while the block runs; raise the pending one after it."""
        return self._deferral

    def resend(self, exc: BaseException) -> None:
        """After a run ended by SIGTERM, let the process's own disposition act on it.

        With the default disposition the process dies by the signal, exactly as
        it would have without tracking. On a task worker (``chain``) whose
        own handler ran, the exception goes up to the worker instead.
        """
        if not isinstance(exc, StopBySignal):
            return
        if self._chain and callable(self._previous.get(exc.signum)):
            return  # the worker's handler ran: the worker decides how to end
        self.restore()
        signal.raise_signal(exc.signum)


class _Deferral:
    """``InterruptGuard.deferred()``: a plain class, as it runs twice on every run."""

    def __init__(self, guard: InterruptGuard) -> None:
        self._guard = guard

    def __enter__(self) -> None:
        self._guard._deferring += 1

    def __exit__(self, *exc_info: object) -> None:
        guard = self._guard
        guard._deferring -= 1
        if not guard._deferring and guard._pending is not None:
            signum, guard._pending = guard._pending, None
            guard._raise(signum)
