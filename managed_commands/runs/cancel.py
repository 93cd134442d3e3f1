"""Cut short, from another thread, the statement the run's thread is waiting on.

A stop raised in the run's thread as SIGTERM would (``InterruptGuard.stop()``)
only lands when Python code runs there again: psycopg lets it in while it
waits, but sqlite3 and MySQLdb return only once their statement is done. So
a stop that must not wait for a long statement also asks the database to end
it: SQLite's ``interrupt()``, PostgreSQL's cancel request, MariaDB's and
MySQL's ``KILL QUERY`` from a connection of the stopping thread's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

from django.db import connections

logger = logging.getLogger("managed_commands")


class StatementCanceller:
    """Knows the statement the run's thread is inside on ``using``, and can cancel it.

    Args:
        using: The alias of the connection the run's own work is on.
    """

    def __init__(self, using: str) -> None:
        self.using = using
        # The run's thread's connection: connections are per thread.
        self._connection = connections[using]
        # How to end the statement in progress (None between statements), and
        # the driver connection it was made for.
        self._running: Callable[[], None] | None = None
        self._raw: Any = None
        self._end: Callable[[], None] | None = None

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Follow the run's statements for the block (entered in the run's thread)."""
        with self._connection.execute_wrapper(self._wrap):
            yield

    def _wrap(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        raw = self._connection.connection
        if raw is not self._raw:
            # Made here, in the run's thread: MySQLdb refuses a call on a
            # connection another thread is using, even for its thread id.
            self._raw, self._end = raw, self._ender(raw)
        self._running = self._end
        try:
            return execute(sql, params, many, context)
        except BaseException as exc:
            if not isinstance(exc, Exception) and self._connection.vendor == "mysql":
                # A stop that lands as MySQLdb returns from a killed statement leaves
                # its result unread, and every later statement on the connection
                # fails "out of sync": close it, so the run's end is written on a
                # new one.
                self._connection.close()
            raise
        finally:
            self._running = None

    def _ender(self, raw: Any) -> Callable[[], None] | None:
        vendor = self._connection.vendor
        if vendor == "sqlite":
            return cast(Callable[[], None], raw.interrupt)
        if vendor == "postgresql":
            return cast(Callable[[], None], raw.cancel)
        if vendor == "mysql":
            return partial(self._kill_query, int(raw.thread_id()))
        return None

    def cancel(self) -> None:
        """From another thread: end the statement the run waits on, if it is in one.

        Between statements there is nothing to end, and a cancel sent then
        could hit the clean-up that follows the stop.
        """
        end = self._running
        if end is None:
            return
        try:
            end()
        except Exception:  # then the stop lands when the statement ends
            logger.warning("Could not cut short the run's statement", exc_info=True)

    def _kill_query(self, thread_id: int) -> None:
        own = connections[self.using]  # this thread's connection, not the run's
        try:
            with own.cursor() as cursor:
                cursor.execute("KILL QUERY %s", [thread_id])
        finally:
            own.close()
