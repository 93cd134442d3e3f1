"""The two writes every run makes, as SQL built once per database vendor.

The ORM compiles the INSERT of a twenty-column row and the UPDATE that
finishes it on every call; on the hot path of every command that costs about
as much as the writes themselves (see the README's "Performance"), so the
recorder sends these prebuilt statements instead. Values still go through each
field's ``get_db_prep_save()``, so they are adapted exactly as the ORM would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from managed_commands.models import CommandExecution

_META = CommandExecution._meta
_FIELDS: dict[str, Field[Any, Any]] = {f.name: f for f in _META.concrete_fields}
_INSERTED: tuple[Field[Any, Any], ...] = tuple(f for f in _FIELDS.values() if not f.primary_key)
_TABLE = str(_META.db_table)
_PK = str(_FIELDS["id"].column)
# Built statements by vendor (and RETURNING support, or the columns set).
_BUILT_INSERTS: dict[tuple[str, bool], str] = {}
_BUILT_UPDATES: dict[tuple[str, tuple[str, ...]], str] = {}


def insert(connection: BaseDatabaseWrapper, fields: Mapping[str, Any]) -> CommandExecution:
    """Insert a row with ``fields`` (the rest take their defaults) and return it."""
    row = CommandExecution(**fields)
    sql, returning = _insert_sql(connection)
    params = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in _INSERTED]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            row.pk = cursor.fetchone()[0]
        else:
            row.pk = connection.ops.last_insert_id(cursor, _TABLE, _PK)
    row._state.adding = False
    row._state.db = connection.alias
    return row


def update(connection: BaseDatabaseWrapper, pk: int, values: Mapping[str, Any]) -> int:
    """Set ``values`` on row ``pk``; return the number of rows changed."""
    names = tuple(values)
    sql = _update_sql(connection, names)
    params = [_FIELDS[name].get_db_prep_save(values[name], connection) for name in names]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk])
        return int(cursor.rowcount)


def _insert_sql(connection: BaseDatabaseWrapper) -> tuple[str, bool]:
    returning = bool(connection.features.can_return_columns_from_insert)
    key = (connection.vendor, returning)
    if key not in _BUILT_INSERTS:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(f.column)) for f in _INSERTED)
        values = ", ".join(["%s"] * len(_INSERTED))
        sql = f"INSERT INTO {quote(_TABLE)} ({columns}) VALUES ({values})"
        if returning:
            sql += f" RETURNING {quote(_PK)}"
        _BUILT_INSERTS[key] = sql
    return _BUILT_INSERTS[key], returning


def _update_sql(connection: BaseDatabaseWrapper, names: tuple[str, ...]) -> str:
    key = (connection.vendor, names)
    if key not in _BUILT_UPDATES:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(str(_FIELDS[n].column))} = %s" for n in names)
        table, pk = quote(_TABLE), quote(_PK)
        _BUILT_UPDATES[key] = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"
    return _BUILT_UPDATES[key]
