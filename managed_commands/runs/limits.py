"""What may stop a run before its body returns, and how each stop is recorded.

SIGTERM and SIGINT become exceptions for the length of a run, and are restored
afterwards; a signal that arrives while the run's row is being written is held back
until the write is done, so the row is never left half-recorded. A command's
``time_limit`` stops it at a deadline, cancelling the statement it is waiting on;
its ``statement_timeout`` and ``lock_timeout`` are set on the database session.

The ``StopRun`` exceptions are control flow inside a run only: the run turns each
into its recorded outcome and the matching public exception.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from functools import partial
from types import FrameType
from typing import Any, cast

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from managed_commands.conf import command_database
from managed_commands.definition import Definition
from managed_commands.exceptions import StatementTimedOut

logger = logging.getLogger("managed_commands")

_SIGNALS = (int(signal.SIGINT), int(signal.SIGTERM))


class StopRun(BaseException):
    """Raised inside a run to stop it as SIGTERM would; its message is the end its row records.

    A ``BaseException``, so that the command's own ``except Exception`` does not swallow it.
    """


class StopBySignal(StopRun):
    """The process received SIGTERM (or, on a task worker, SIGINT)."""

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
        #: What the task worker's own handler raised (``chain``), raised by resend().
        self._worker_exit: SystemExit | KeyboardInterrupt | None = None

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
            try:
                previous(signum, frame)
            except (SystemExit, KeyboardInterrupt) as exc:
                # The worker's handler ends the process its own way (billiard's
                # SystemExit(-241) in a Celery prefork child, a second Ctrl-C): the
                # run still ends as stopped by the signal, then resend() raises this.
                self._worker_exit = exc
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
        if signum == signal.SIGINT and not self._chain:
            raise KeyboardInterrupt
        # On a task worker, SIGINT too: the task turns this stop of ours into an
        # ordinary exception (tasks.WorkerStopped), never a KeyboardInterrupt.
        raise StopBySignal(signum)

    def deferred(self) -> _Deferral:
        """Hold signals back while the block runs; raise the pending one after it."""
        return self._deferral

    def resend(self, exc: BaseException) -> None:
        """After a run ended by SIGTERM, let the process's own disposition act on it.

        With the default disposition the process dies by the signal, exactly as
        it would have without tracking. On a task worker (``chain``) whose
        own handler ran, the exception goes up to the worker instead, or what
        that handler raised (``SystemExit``), once the run's end is recorded.
        """
        if not isinstance(exc, StopBySignal):
            return
        if self._worker_exit is not None:
            raise self._worker_exit  # how the worker's handler chose to end the process
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


#: libpq's PQTRANS_IDLE and PQTRANS_INTRANS, as psycopg 2 and 3 both report them
#: (``connection.info.transaction_status``): no transaction open / one open and sound.
_PQ_IDLE = 0
_PQ_IN_TRANSACTION = 2

#: SQLSTATE of a statement PostgreSQL refuses inside a transaction block
#: (VACUUM, CREATE INDEX CONCURRENTLY, ...): it cannot be given SET LOCAL.
_PG_NOT_IN_TRANSACTION = "25001"

#: The error codes each timeout raises, by the attribute that sets it.
_PG_CODES = {"57014": "statement_timeout", "55P03": "lock_timeout"}
_MYSQL_CODES = {1969: "statement_timeout", 3024: "statement_timeout", 1205: "lock_timeout"}


@contextmanager
def database_timeouts(definition: Definition) -> Iterator[None]:
    """Apply the command's timeouts on its database for the block (``handle()``).

    Raises:
        StatementTimedOut: A statement was stopped by a timeout this run set,
            chained from the database's error.
    """
    if not definition.timeouts:
        yield
        return
    connection = connections[command_database()]
    applied: AbstractContextManager[None] = nullcontext()
    if connection.vendor == "postgresql":
        applied = _PostgresTimeouts(connection, definition).applied()
    elif connection.vendor == "mysql":
        applied = _mysql_session(connection, definition)
    try:
        with applied:
            yield
    except DatabaseError as exc:
        attribute = _timeout_behind(exc, definition)
        if attribute is None:
            raise
        raise StatementTimedOut(
            f"'{definition.name}' failed: its {attribute} of {getattr(definition, attribute):g} s "
            f"stopped a query{'' if attribute == 'statement_timeout' else ' waiting for a lock'} "
            f"({_database_message(exc)})."
        ) from exc


class _PostgresTimeouts:
    """``SET LOCAL`` the timeouts in every transaction the run's connection opens.

    An execute wrapper sees each statement before it is sent. When Django has
    a transaction open (autocommit off) and the driver has not begun it yet,
    the timeouts are set first, on a plain driver cursor, so they land in that
    transaction. In autocommit mode the statement runs in a transaction of its
    own, ``BEGIN; SET LOCAL ...; statement; COMMIT``.
    """

    def __init__(self, connection: BaseDatabaseWrapper, definition: Definition) -> None:
        self.connection = connection
        settings = {
            "statement_timeout": definition.statement_timeout,
            "lock_timeout": definition.lock_timeout,
        }
        # Milliseconds, at least 1: 0 would mean "no timeout".
        self._set_sql = "SELECT " + ", ".join(
            f"set_config('{name}', '{max(1, round(seconds * 1000))}', true)"
            for name, seconds in settings.items()
            if seconds is not None
        )
        self._names = [name for name, seconds in settings.items() if seconds is not None]

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Set the timeouts for the block, then put back what the transaction had."""
        connection = self.connection
        connection.ensure_connection()
        # Read before anything is set; a transaction already open (the caller's)
        # gets the timeouts now, and its own values back at the end.
        previous = self._raw_row(
            "SELECT " + ", ".join(f"current_setting('{name}')" for name in self._names)
        )
        if self._status() == _PQ_IN_TRANSACTION:
            self._raw_row(self._set_sql)
        try:
            with connection.execute_wrapper(self._wrap):
                yield
        finally:
            # A transaction handle() leaves open (or the caller's) keeps going
            # after the run: it gets back what it had. One that failed is only
            # good for a rollback, which takes the SET LOCAL with it.
            if connection.connection is not None and self._status() == _PQ_IN_TRANSACTION:
                self._raw_row(
                    "SELECT "
                    + ", ".join(f"set_config('{name}', %s, true)" for name in self._names),
                    previous,
                )

    def _wrap(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        if self._status() != _PQ_IDLE:
            return execute(sql, params, many, context)
        if not self.connection.get_autocommit():
            self._raw_row(self._set_sql)  # begins Django's transaction with the timeouts
            return execute(sql, params, many, context)
        return self._in_own_transaction(execute, sql, params, many, context)

    def _in_own_transaction(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        self._raw_row("BEGIN")
        self._raw_row(self._set_sql)
        try:
            result = execute(sql, params, many, context)
        except DatabaseError as exc:
            self._rollback()
            if _sqlstate(exc) == _PG_NOT_IN_TRANSACTION:
                # It refuses any transaction block, so it runs without the timeouts.
                return execute(sql, params, many, context)
            raise
        except BaseException:
            self._rollback()
            raise
        self._raw_row("COMMIT")
        return result

    def _rollback(self) -> None:
        # On a broken connection the statement's own error tells what happened.
        with suppress(DatabaseError):
            self._raw_row("ROLLBACK")

    def _status(self) -> int:
        return int(self.connection.connection.info.transaction_status)

    def _raw_row(self, sql: str, params: Any = None) -> Any:
        """Run ``sql`` on a plain driver cursor: past the execute wrappers, this one included."""
        with self.connection.wrap_database_errors, self.connection.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None


@contextmanager
def _mysql_session(connection: BaseDatabaseWrapper, definition: Definition) -> Iterator[None]:
    """Set the session's timeout variables for the block, then put back what it had."""
    wanted: dict[str, float | int] = {}
    if definition.statement_timeout is not None:
        if connection.mysql_is_mariadb:  # type: ignore[attr-defined]
            wanted["max_statement_time"] = definition.statement_timeout
        else:  # milliseconds, SELECT statements only
            wanted["max_execution_time"] = max(1, round(definition.statement_timeout * 1000))
    if definition.lock_timeout is not None:
        # Whole seconds, at least 1.
        wanted["innodb_lock_wait_timeout"] = max(1, math.ceil(definition.lock_timeout))
    names = list(wanted)
    assignments = ", ".join(f"SESSION {name} = %s" for name in names)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"@@SESSION.{name}" for name in names))
        previous = cursor.fetchone()
        cursor.execute(f"SET {assignments}", list(wanted.values()))
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SET {assignments}", previous)
        except DatabaseError:
            # The connection must not go on with the run's timeouts.
            logger.warning(
                "Could not put back the session's %s after the run; closing its connection.",
                ", ".join(names),
                exc_info=True,
            )
            connection.close()


def _timeout_behind(exc: DatabaseError, definition: Definition) -> str | None:
    """The timeout attribute (set by this run) whose error ``exc`` is, or None."""
    cause = exc.__cause__ or exc
    code = _sqlstate(exc)
    if code is not None:
        attribute = _PG_CODES.get(code)
    else:
        args = getattr(cause, "args", ())
        attribute = _MYSQL_CODES.get(args[0]) if args and isinstance(args[0], int) else None
    if attribute is None or getattr(definition, attribute) is None:
        return None
    return attribute


def _sqlstate(exc: DatabaseError) -> str | None:
    """PostgreSQL's SQLSTATE of ``exc`` (psycopg 3: ``sqlstate``; psycopg2: ``pgcode``)."""
    cause = exc.__cause__ or exc
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return str(code) if code else None


def _database_message(exc: DatabaseError) -> str:
    """The database's own one-line message for ``exc``."""
    cause = exc.__cause__ or exc
    primary = getattr(getattr(cause, "diag", None), "message_primary", None)
    if primary:
        return str(primary)
    args: tuple[Any, ...] = getattr(cause, "args", ())
    if len(args) > 1 and isinstance(args[0], int):  # MySQLdb: (code, message)
        return str(args[1])
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
