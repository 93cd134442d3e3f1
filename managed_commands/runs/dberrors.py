"""Classify database errors met while recording: busy (retry), a broken connection
(reconnect), or unavailable (fail closed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connections

from managed_commands import conf
from managed_commands.exceptions import TrackingUnavailable
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder

T = TypeVar("T")
_FIRST_RETRY_DELAY = 0.25
_MAX_RETRY_DELAY = 5.0

# SQLite: another writer holds the database; MySQL: lock wait timeout,
# deadlock; PostgreSQL: serialization failure, deadlock, lock not available.
_BUSY_MESSAGES = ("database is locked", "database table is locked")
_BUSY_MYSQL_CODES = {1205, 1213}
_BUSY_PG_CODES = {"40001", "40P01", "55P03"}
_MISSING_TABLE_MESSAGES = ("no such table", "does not exist", "doesn't exist")


def _cause(exc: BaseException) -> BaseException:
    return exc.__cause__ or exc


def is_busy(exc: DatabaseError) -> bool:
    """Tell whether ``exc`` only means another process holds a lock right now."""
    cause = _cause(exc)
    if getattr(cause, "sqlstate", None) in _BUSY_PG_CODES:
        return True
    args = getattr(cause, "args", ())
    if args and args[0] in _BUSY_MYSQL_CODES:
        return True
    return any(message in str(cause).lower() for message in _BUSY_MESSAGES)


def is_missing_table(exc: DatabaseError) -> bool:
    """Tell whether ``exc`` says the history table does not exist (where it was looked for)."""
    text = str(_cause(exc)).lower()
    table = CommandExecution._meta.db_table
    return table in text and any(message in text for message in _MISSING_TABLE_MESSAGES)


def error_code(exc: DatabaseError) -> str:
    """``exc``'s class and code (SQLSTATE, MySQL errno, SQLite error name), without its text.

    The text may quote the value the database refused (PostgreSQL's ``DETAIL:
    Failing row contains (...)``): what is stored in its place must not be
    refused again for the same reason.
    """
    cause = _cause(exc)
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if code:
        return f"{type(exc).__name__}, SQLSTATE {code}"
    args = getattr(cause, "args", ())
    if args and isinstance(args[0], int):
        return f"{type(exc).__name__}, error {args[0]}"
    name = getattr(cause, "sqlite_errorname", None)
    return f"{type(exc).__name__}, {name}" if name else type(exc).__name__


def unavailable(exc: DatabaseError, using: str, *, reading: bool = False) -> TrackingUnavailable:
    """Explain why a run cannot be recorded, and so was not started.

    Args:
        reading: Only the history was to be read (a listing), not a run recorded.
    """
    table = CommandExecution._meta.db_table
    text = str(_cause(exc)).strip()
    what = (
        "The history cannot be read"
        if reading
        else "The command was not run: its run cannot be recorded"
    )
    if is_missing_table(exc):
        schema = getattr(connections[using], "schema_name", None)
        if schema:
            return TrackingUnavailable(
                f"{what} because the table '{table}' does not exist in schema '{schema}' "
                f"of database '{using}'. {_tenants_advice(schema)}"
            )
        return TrackingUnavailable(
            f"{what} because the table '{table}' does not exist in database '{using}'. "
            f"Run 'python manage.py migrate managed_commands' first."
        )
    return TrackingUnavailable(
        f"{what} in database '{using}' "
        f"({type(_cause(exc)).__name__}: {text}). Check that the database is reachable "
        f"and DATABASES['{using}'] is right, then try again."
    )


def _tenants_advice(schema: str) -> str:
    """django-tenants: what to do when ``schema`` has no history table.

    The table exists only in the schemas of the app list (SHARED_APPS or
    TENANT_APPS) that holds managed_commands, so the advice depends on which.
    """
    lists = conf.tenant_app_lists()
    if "SHARED_APPS" in lists:
        return "Run 'python manage.py migrate_schemas --shared' first."
    if not lists:
        return (
            "Add 'managed_commands' to SHARED_APPS (one history for all tenants) or "
            "TENANT_APPS (one per tenant) and run 'python manage.py migrate_schemas'."
        )
    if schema == conf.public_schema():
        return (
            "'managed_commands' is in TENANT_APPS only, so the history lives in each tenant's "
            "schema: deploy every tenant with 'python manage.py run_pending_commands "
            "--all-tenants', or run a command in each with 'python manage.py "
            "all_tenants_command --no-public <command>'."
        )
    return f"Run 'python manage.py migrate_schemas --schema={schema}' first."


def after_reconnect(
    recorder: ExecutionRecorder,
    error: DatabaseError,
    deadline: float,
    read: Callable[[], T],
    announce: Callable[[str], None],
) -> T:
    """Once a broken connection was dropped: wait until ``read()`` works on a new one.

    A write that failed with its connection may have landed all the same;
    ``read()`` tells, before anything is written again. Backs off between
    attempts and raises ``error`` once ``deadline`` (a ``time.monotonic()``
    value) has passed. Once the first attempt failed, passes ``announce`` the
    line saying that it waits: a start must not wait ``RECONNECT_TIMEOUT`` in silence.
    """
    delay = _FIRST_RETRY_DELAY
    announced = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise error
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_RETRY_DELAY)
        try:
            return read()
        except DatabaseError as exc:
            recorder.drop_broken_connection()
            if not announced:
                announced = True
                announce(
                    f"database '{recorder.using}' unreachable ({type(_cause(exc)).__name__}): "
                    f"retrying for up to {conf.reconnect_timeout():g} s "
                    f"(MANAGED_COMMANDS['RECONNECT_TIMEOUT'])."
                )
