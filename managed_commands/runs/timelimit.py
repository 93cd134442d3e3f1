"""Stop a run that reaches its ``time_limit``, the same way on every database.

A timer thread stops the run as SIGTERM would (``InterruptGuard.stop()``),
raising ``StopAtTimeLimit`` in it: the run ends ``interrupted``, with the
reason on its row. Python code stops at once, and a statement in progress is
cut short (``StatementCanceller``), so the stop does not wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand

from managed_commands.definition import Definition
from managed_commands.runs.cancel import StatementCanceller
from managed_commands.runs.interrupts import InterruptGuard, StopAtTimeLimit
from managed_commands.scopes import command_database

logger = logging.getLogger("managed_commands")


@contextmanager
def time_limit(
    definition: Definition, guard: InterruptGuard, command: BaseCommand
) -> Iterator[None]:
    """Stop the block (``handle()``) once it has run for its ``time_limit`` (None: never).

    A run that cannot be interrupted (it does not run in the main thread, or
    SIGTERM is ignored) goes on; its stderr, and so its row, says so.
    """
    seconds, name = definition.time_limit, definition.name
    if seconds is None:
        yield
        return
    # Held by the timer while it stops the run, and by the block's end, so no
    # stop starts once the block is over.
    ending = threading.Lock()
    state = {"over": False, "missed": False}
    canceller = StatementCanceller(command_database())

    def expire() -> None:
        with ending:
            if state["over"]:
                return
            reason = StopAtTimeLimit(f"Stopped: time_limit of {seconds:g} s reached.")
            if not guard.stop(reason, then=canceller.cancel):
                state["missed"] = True
                logger.warning(
                    "'%s' reached its time_limit of %g s but cannot be stopped: %s",
                    name,
                    seconds,
                    _CANNOT_STOP,
                )

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        with canceller.watching():
            yield
    finally:
        timer.cancel()
        with ending:
            state["over"] = True
        if state["missed"]:
            command.stderr.write(
                f"managed_commands: time_limit of {seconds:g} s reached, but the run "
                f"could not be stopped: {_CANNOT_STOP}"
            )


_CANNOT_STOP = "it does not run in the main thread, or SIGTERM is ignored there."
