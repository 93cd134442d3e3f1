"""Classify database errors met while recording: busy (retry), a broken connection
(reconnect), or unavailable (fail closed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connections

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


def unavailable(exc: DatabaseError, using: str) -> TrackingUnavailable:
    """Explain why a run cannot be recorded, and so was not started."""
    table = CommandExecution._meta.db_table
    text = str(_cause(exc)).strip()
    if table in text and any(m in text.lower() for m in _MISSING_TABLE_MESSAGES):
        schema = getattr(connections[using], "schema_name", None)
        if schema:
            # django-tenants: the table exists only in the schemas of the apps
            # list (SHARED_APPS or TENANT_APPS) that holds managed_commands.
            return TrackingUnavailable(
                f"The command was not run: its run cannot be recorded because the table "
                f"'{table}' does not exist in schema '{schema}' of database '{using}'. "
                f"Add 'managed_commands' to SHARED_APPS (one history for all tenants) or "
                f"TENANT_APPS (one per tenant) and run 'python manage.py migrate_schemas'."
            )
        return TrackingUnavailable(
            f"The command was not run: its run cannot be recorded because the table "
            f"'{table}' does not exist in database '{using}'. "
            f"Run 'python manage.py migrate managed_commands' first."
        )
    return TrackingUnavailable(
        f"The command was not run: its run cannot be recorded in database '{using}' "
        f"({type(_cause(exc)).__name__}: {text}). Check that the database is reachable "
        f"and DATABASES['{using}'] is right, then try again."
    )


def after_reconnect(
    recorder: ExecutionRecorder, error: DatabaseError, deadline: float, read: Callable[[], T]
) -> T:
    """Once a broken connection was dropped: wait until ``read()`` works on a new one.

    A write that failed with its connection may have landed all the same;
    ``read()`` tells, before anything is written again. Backs off between
    attempts and raises ``error`` once ``deadline`` (a ``time.monotonic()``
    value) has passed.
    """
    delay = _FIRST_RETRY_DELAY
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise error
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_RETRY_DELAY)
        try:
            return read()
        except DatabaseError:
            recorder.drop_broken_connection()
