"""The only code that reads or writes ``CommandExecution`` rows."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, Field, Max, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from managed_commands import conf
from managed_commands.models import CommandExecution

Status = CommandExecution.Status
_UNION_BATCH = 100
# Stands for the command name in the compiled SQL of ``latest_runs()``.
_NAME = "<managed_commands:name>"
_DELETE_BATCH = 1000


def history_recorder() -> ExecutionRecorder:
    """The recorder of the history database (``MANAGED_COMMANDS["DATABASE"]`` or the routers')."""
    return ExecutionRecorder(conf.history_database())


class ExecutionRecorder:
    """Reads and writes the history of managed commands on one database."""

    def __init__(self, using: str) -> None:
        self.using = using

    @property
    def executions(self) -> QuerySet[CommandExecution]:
        return CommandExecution.objects.using(self.using)

    def last_successes(self, names: Iterable[str], scope: str) -> dict[str, Any]:
        """Map each of ``names`` that has a successful run to the start of its newest one."""
        names = list(names)
        if not names:
            return {}
        rows = (
            self.executions.filter(command_name__in=names, scope=scope, success=True)
            .order_by()
            .values_list("command_name")
            .annotate(last=Max("executed_at"))
        )
        return dict(rows)

    def latest_runs(
        self, names: Iterable[str], scope: str, *, successful: bool = False
    ) -> dict[str, CommandExecution]:
        """Map each of ``names`` that ran to its newest run (or newest successful run).

        One index seek per name, so the cost grows with the number of names,
        never with history: on PostgreSQL in one statement (a LATERAL join over
        the names), elsewhere in UNION ALL batches.
        """
        names = list(dict.fromkeys(names))
        runs = self.executions.filter(scope=scope)
        if successful:
            runs = runs.filter(success=True)

        def seek(name: object) -> tuple[str, tuple[Any, ...]]:
            # Compiling an ORM query costs about 1 ms of Python: compile the
            # seek once and repeat its SQL, rather than one query per name.
            query = runs.filter(command_name=name).order_by("-executed_at", "-pk")[:1].query
            return query.sql_with_params()

        statements: list[tuple[str, list[Any]]] = []
        if connections[self.using].vendor == "postgresql":
            # Planned once, where a UNION of 100 seeks costs tens of ms to plan.
            sql, params = seek(RawSQL("wanted.name", ()))
            statements.append(
                (
                    "SELECT newest.* FROM unnest(%s::text[]) AS wanted(name) "
                    f"CROSS JOIN LATERAL ({sql}) AS newest",
                    [names, *params],
                )
            )
        else:
            sql, params = seek(_NAME)
            for start in range(0, len(names), _UNION_BATCH):
                batch = names[start : start + _UNION_BATCH]
                # A derived table may hold ORDER BY and LIMIT on every backend.
                union = " UNION ALL ".join(
                    f"SELECT * FROM ({sql}) newest_{number}" for number in range(len(batch))
                )
                values = [name if value == _NAME else value for name in batch for value in params]
                statements.append((union, values))
        found = [run for sql, values in statements for run in self.executions.raw(sql, values)]
        return {run.command_name: run for run in found}

    def has_succeeded(self, name: str, scope: str) -> bool:
        return self.executions.filter(command_name=name, scope=scope, success=True).exists()

    def claim(self, **fields: Any) -> CommandExecution:
        """Insert a running row; raises ``IntegrityError`` when ``lock_key`` is already held."""
        connection = connections[self.using]
        if connection.in_atomic_block:
            # A failed INSERT must not abort the caller's transaction.
            with transaction.atomic(using=self.using):
                return _insert(connection, fields)
        return _insert(connection, fields)

    def holder(self, lock_key: str) -> CommandExecution | None:
        return self.executions.filter(lock_key=lock_key).first()

    def abandon(self, holder: CommandExecution, reason: str) -> bool:
        """Close a dead holder's row and free its lock, unless someone already did."""
        now = timezone.now()
        return bool(
            self.executions.filter(pk=holder.pk, lock_key=holder.lock_key).update(
                lock_key=None,
                status=Status.ABANDONED,
                success=False,
                finished_at=now,
                duration=(now - holder.executed_at).total_seconds(),
                error_message=f"Abandoned: {reason}.",
            )
        )

    def discard(self, execution: CommandExecution) -> None:
        """Delete a claim that turned out not to be needed (the work was already done)."""
        self.executions.filter(pk=execution.pk).delete()

    def finish(self, execution: CommandExecution, **fields: Any) -> None:
        """Complete a run's row and free its lock."""
        fields["lock_key"] = None
        for name, value in fields.items():
            setattr(execution, name, value)
        _update(connections[self.using], execution.pk, fields)

    def heartbeat(self, pks: Iterable[int]) -> None:
        self.executions.filter(pk__in=list(pks), lock_key__isnull=False).update(
            heartbeat_at=timezone.now()
        )

    def record(self, **fields: Any) -> CommandExecution:
        """Insert a finished row (manual API, faked runs)."""
        return self.executions.create(**fields)

    def record_faked(self, name: str, scope: str, **fields: Any) -> CommandExecution:
        """Record a run_once command as done without running it (status ``faked``)."""
        now = timezone.now()
        return self.executions.create(
            command_name=name,
            scope=scope,
            status=Status.FAKED,
            success=True,
            run_once=True,
            executed_at=now,
            finished_at=now,
            duration=0.0,
            **fields,
        )

    def prunable(self, before: datetime.datetime) -> QuerySet[CommandExecution]:
        """Finished runs started before ``before``, except each command's newest success.

        Keeping the newest successful run of every command (per scope) means
        pruning never makes a done run_once command pending again, nor an
        entry of ``requires`` unmet.
        """
        newer_success = self.executions.filter(
            command_name=OuterRef("command_name"), scope=OuterRef("scope"), success=True
        ).filter(
            Q(executed_at__gt=OuterRef("executed_at"))
            | Q(executed_at=OuterRef("executed_at"), pk__gt=OuterRef("pk"))
        )
        return (
            self.executions.filter(executed_at__lt=before, lock_key__isnull=True)
            .exclude(status=Status.RUNNING)
            .exclude(Q(success=True) & ~Exists(newer_success))
        )

    def prune(self, before: datetime.datetime) -> int:
        """Delete the ``prunable()`` runs, in batches; return how many were deleted."""
        deleted = 0
        # Select then delete by key: MySQL cannot delete from a table its subquery reads.
        while batch := list(self.prunable(before).values_list("pk", flat=True)[:_DELETE_BATCH]):
            deleted += self.executions.filter(pk__in=batch).delete()[0]
        return deleted

    def history(self, name: str, scope: str | None = None) -> QuerySet[CommandExecution]:
        """Return a command's runs, newest first."""
        runs = self.executions.filter(command_name=name)
        if scope is not None:
            runs = runs.filter(scope=scope)
        return runs.order_by("-executed_at", "-pk")

    def flush(self) -> None:
        """Delete every row (for tests)."""
        self.executions.all().delete()


# -- The two writes every run makes, as SQL built once per database vendor. ---
# The ORM compiles the INSERT of a twenty-column row and the UPDATE that
# finishes it on every call; on the hot path of every command that costs about
# as much as the writes themselves (see tests/benchmarks/README.md), so the
# recorder sends these prebuilt statements instead. Values still go through
# each field's ``get_db_prep_save()``, so they are adapted exactly as the ORM
# would.

_META = CommandExecution._meta
_FIELDS: dict[str, Field[Any, Any]] = {f.name: f for f in _META.concrete_fields}
_INSERTED: tuple[Field[Any, Any], ...] = tuple(f for f in _FIELDS.values() if not f.primary_key)
_TABLE = str(_META.db_table)
_PK = str(_FIELDS["id"].column)
# Built statements by vendor (and RETURNING support, or the columns set).
_BUILT_INSERTS: dict[tuple[str, bool], str] = {}
_BUILT_UPDATES: dict[tuple[str, tuple[str, ...]], str] = {}


def _insert(connection: BaseDatabaseWrapper, fields: Mapping[str, Any]) -> CommandExecution:
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


def _update(connection: BaseDatabaseWrapper, pk: int, values: Mapping[str, Any]) -> int:
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
