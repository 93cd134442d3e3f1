"""Classify database errors met while recording: busy (retry) or unavailable (fail closed)."""

from __future__ import annotations

from django.db import DatabaseError, connections

from managed_commands.exceptions import TrackingUnavailable
from managed_commands.models import CommandExecution

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
