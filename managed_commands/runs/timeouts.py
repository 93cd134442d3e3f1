"""Have the database stop a statement of ``handle()`` that runs, or waits for a lock, too long.

A command's ``statement_timeout`` and ``lock_timeout`` hold on the connection
its own work runs on, for the length of ``handle()`` only: the run's start and
end, written before and after, are never cut short by them, and the
connection goes back to the project as it was.

- PostgreSQL: ``SET LOCAL`` inside each transaction ``handle()`` opens, a
  statement outside one running in a transaction of its own. A session
  ``SET`` would outlive the run behind PgBouncer in transaction pooling, on
  whichever client gets the server connection next; ``SET LOCAL`` ends with
  its transaction.
- MariaDB and MySQL: session variables, set at the start and put back at the
  end (a connection there is the client's own, never shared mid-session).
- SQLite has neither; the system checks warn (``managed_commands.W002``).

A statement stopped by one of them fails the run with ``StatementTimedOut``, which
names the timeout, rather than with the driver's error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from managed_commands.definition import Definition
from managed_commands.exceptions import StatementTimedOut
from managed_commands.scopes import command_database

logger = logging.getLogger("managed_commands")

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
