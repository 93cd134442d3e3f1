"""The only code that reads or writes ``CommandExecution`` rows."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DEFERRED, Count, Exists, Field, OuterRef, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Concat
from django.utils import timezone

from managed_commands import conf
from managed_commands.models import CommandExecution

Status = CommandExecution.Status
_UNFINISHED = (Status.RUNNING, Status.QUEUED)
_UNION_BATCH = 100
# Stand for the command name and the scope in the compiled SQL of the seeks.
_NAME = "<managed_commands:name>"
_SCOPE = "<managed_commands:scope>"
_KEY = "<managed_commands:key>"
_DELETE_BATCH = 1000
# ``success=True`` compiles to a bare ``WHERE "success"``, which SQLite cannot
# use as a key of an index: this compiles to ``"success" = true`` instead, so
# the seeks below reach their rows through the ``success`` index column.
_SUCCEEDED = Q(success=Value(True))
# The runs that decide where the next start of a batch loop begins: a success
# (it starts over) or a run that saved a cursor (it continues from it, when
# that run did not finish). Every run that reaches a loop saves one, a run that
# resumes carries the cursor it resumed from, so the newest of them holds it.
_DECIDES_RESUME = Q(cursor__isnull=False) | _SUCCEEDED
#: The long columns of a run, which a status leaves to load on access.
SUMMARY_DEFERRED = ("output", "stderr", "traceback", "parameters", "cursor", "writes")


@lru_cache(maxsize=1024)
def command_key(name: str, scope: str) -> str:
    """The key of command ``name`` in ``scope``: the value of its ``lock_key`` and ``once_key``.

    Both columns hold the same value: each has its own unique index, so they
    never collide, and one parameter finds the holder of either.
    """
    return hashlib.sha256(f"{scope}\0{name}".encode()).hexdigest()


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
        """Map each of ``names`` that has a successful run to the start of its newest one.

        On the path of every run with ``requires`` (a run_once run asks its
        claim's insert instead, see ``once_key``): one
        index seek per name (the newest success is the first entry), in SQL
        built once per backend rather than compiled by the ORM on every call.
        """
        rows = self._seek_rows(names, scope, ("command_name", "executed_at"), successful=True)
        return dict(rows)

    def newest_runs(
        self, names: Iterable[str], scope: str, columns: tuple[str, ...] | None = None
    ) -> tuple[dict[str, CommandExecution], dict[str, CommandExecution]]:
        """Map each of ``names`` that ran to its newest run, and to its newest successful run.

        One index seek per name (on PostgreSQL all in one statement) reads the
        newest run, so the cost grows with the number of names, never with
        history. Only for the names whose newest run did not succeed (a
        failure, a run in progress) is the newest success sought apart.

        Args:
            columns: The columns the rows hold (``BRIEF_COLUMNS``, say); the
                others load on access. None: every column but the long ones
                (``SUMMARY_DEFERRED``), which a listing never prints and which
                may hold megabytes.
        """
        columns = _read_columns(columns or _SUMMARY)
        newest = self._runs(names, scope, columns, successful=False)
        succeeded = {name: run for name, run in newest.items() if run.success}
        others = [name for name in newest if name not in succeeded]
        succeeded.update(self._runs(others, scope, columns, successful=True))
        return newest, succeeded

    def _runs(
        self, names: Iterable[str], scope: str, columns: tuple[str, ...], *, successful: bool
    ) -> dict[str, CommandExecution]:
        """Map each of ``names`` to its newest (successful) run, holding ``columns``."""
        deferred = _deferred_positions(columns)
        found = {}
        for values in self._seek_rows(names, scope, columns, successful=successful):
            for position in deferred:  # from_db() takes every field, in order
                values.insert(position, DEFERRED)
            run = CommandExecution.from_db(self.using, _ATTNAMES, values)
            found[run.command_name] = run
        return found

    def _seek_rows(
        self, names: Iterable[str], scope: str, columns: tuple[str, ...], *, successful: bool
    ) -> list[list[Any]]:
        """``columns`` of the newest (successful) run of each of ``names`` that has one."""
        names = list(dict.fromkeys(names))
        if not names:
            return []
        connection = connections[self.using]
        reads = _reads(self.using, connection)
        converters = reads.converters(columns, connection)
        found = []
        for sql, params in reads.seeks(
            names, scope, connection, successful=successful, columns=columns
        ):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
            for row in rows:
                values = list(row)
                for index, column, convert in converters:
                    for converter in convert:
                        values[index] = converter(values[index], column, connection)
                found.append(values)
        return found

    def has_succeeded(self, name: str, scope: str) -> bool:
        """Tell whether ``name`` has a successful run in ``scope`` (SQL built once per backend).

        No longer on a run's path: whether a run_once run may start is decided
        by the unique ``once_key`` its claim inserts, never by a read.
        """
        connection = connections[self.using]
        sql, params = _reads(self.using, connection).succeeded(name, scope, connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None

    def claim(self, **fields: Any) -> CommandExecution:
        """Insert a running row; raises ``IntegrityError`` when ``lock_key`` or
        ``once_key`` is already held."""
        connection = connections[self.using]
        if connection.in_atomic_block:
            # A failed INSERT must not abort the caller's transaction.
            with transaction.atomic(using=self.using):
                return _insert(connection, fields)
        return _insert(connection, fields)

    def key_holders(self, key: str, *, once: bool) -> list[CommandExecution]:
        """The rows holding ``key`` as their ``lock_key`` or, with ``once``, their ``once_key``.

        What a refused claim reads to learn which unique key refused it: at
        most two rows (a live run_once run holds both keys on one row), in one
        statement whose SQL is built once per backend.
        """
        connection = connections[self.using]
        sql, params = _reads(self.using, connection).key_holders(key, once, connection)
        return _select(connection, sql, params)

    def free_once_key(self, row: CommandExecution) -> bool:
        """Clear the ``once_key`` of a finished row that did not succeed (it should hold none)."""
        return bool(
            self.executions.filter(
                pk=row.pk, once_key=row.once_key, success=False, lock_key__isnull=True
            ).update(once_key=None)
        )

    def running_row_of(
        self,
        name: str,
        scope: str,
        lock_key: str | None,
        *,
        since: datetime.datetime,
        pid: int,
        process_token: str,
        host_id: str,
    ) -> CommandExecution | None:
        """The running row a process inserted since ``since`` (a claim whose reply was lost)."""
        rows = self.executions.filter(
            command_name=name,
            scope=scope,
            status=Status.RUNNING,
            executed_at__gte=since,
            pid=pid,
            process_token=process_token,
            host_id=host_id,
        )
        rows = rows.filter(lock_key=lock_key) if lock_key else rows.filter(lock_key__isnull=True)
        return rows.order_by("-pk").first()

    def claim_holders(self, scope: str) -> list[CommandExecution]:
        """The rows of ``scope`` holding a command's claim: queued or running runs."""
        return list(self.executions.filter(scope=scope, lock_key__isnull=False).order_by("pk"))

    def start_queued(self, pk: int, **fields: Any) -> CommandExecution | None:
        """Turn queued row ``pk`` into a running one with ``fields``; None when it is no
        longer queued (taken by another delivery of its task, or abandoned).

        A conditional update: of two workers given the same task, one starts it.
        """
        started = self.executions.filter(pk=pk, status=Status.QUEUED).update(
            status=Status.RUNNING, **fields
        )
        return self.executions.get(pk=pk) if started else None

    def abandon(self, holder: CommandExecution, reason: str) -> bool:
        """Close a dead holder's row and free its keys, unless it changed since it was
        judged dead (see ``close_holder()``)."""
        return self.close_holder(holder, Status.ABANDONED, f"Abandoned: {reason}.")

    def close_holder(self, holder: CommandExecution, status: str, message: str) -> bool:
        """End ``holder``'s row with ``status`` and free its keys; False when the row
        is no longer as ``holder`` was read.

        The update re-checks, in the same statement, what the row was judged
        on: its claim, its status and its heartbeat. A queued row a worker
        started meanwhile (now ``running``), or a holder that beat again, is
        left to its process.
        """
        now = timezone.now()
        judged = self.executions.filter(
            pk=holder.pk,
            lock_key=holder.lock_key,
            status=holder.status,
            heartbeat_at=holder.heartbeat_at,
        )
        return (
            judged.update(
                lock_key=None,
                once_key=None,
                status=status,
                success=False,
                finished_at=now,
                duration=(now - holder.executed_at).total_seconds(),
                error_message=message,
            )
            == 1
        )

    def finish(self, execution: CommandExecution, lock_key: str | None, **fields: Any) -> bool:
        """Complete a run's row and free its lock; False when the row no longer holds ``lock_key``.

        The write is fenced: it changes the row only while the row still holds
        the claim it was given (``lock_key``; a run without a lock has none to
        lose), so a holder that was taken over never overwrites its
        ``abandoned`` row. Only a success keeps its ``once_key``: a success
        leaves it out of the UPDATE, any other end of a run_once run clears it
        (decided by ``run_once``, not by the key in memory, which a first
        attempt that failed has already cleared).
        """
        fields["lock_key"] = None
        if execution.run_once and not fields.get("success", execution.success):
            fields["once_key"] = None
        for name, value in fields.items():
            setattr(execution, name, value)
        return _update(connections[self.using], execution.pk, fields, lock_key) == 1

    def mark_ended(self, execution: CommandExecution, lock_key: str | None, **times: Any) -> bool:
        """Mark a run ended whose end could not be written: ``times`` (its ``finished_at``
        and ``duration``) only, on a row left ``running`` with its claim (see
        ``CommandExecution.outcome_unknown``); False when the row no longer holds it."""
        rows = self.executions.filter(pk=execution.pk, status=Status.RUNNING)
        rows = rows.filter(lock_key=lock_key) if lock_key else rows
        return rows.update(**times) == 1

    def save_progress(self, pk: int, lock_key: str | None, values: dict[str, Any]) -> bool:
        """Write a batch loop's cursor and progress on run ``pk``, fenced like ``finish()``
        and only while no stop was asked of it; False when either stopped the write.

        One prebuilt statement: it runs after every batch of a loop.
        """
        return _update(connections[self.using], pk, values, lock_key, unless_stopped=True) == 1

    def end_state(self, execution: CommandExecution, lock_key: str | None) -> bool | None:
        """After a write of the end that may or may not have landed: where the row stands.

        True when the end is written (the row is no longer running and, if it
        held ``lock_key``, was not abandoned), False when the run was taken
        over, None while the row still holds its claim (the write did not land).
        """
        row = self.executions.filter(pk=execution.pk).values("status", "lock_key").first()
        if row is None or row["status"] == Status.ABANDONED:
            return False
        if lock_key is not None:
            return None if row["lock_key"] == lock_key else row["lock_key"] is None
        return None if row["status"] == Status.RUNNING else True

    def drop_broken_connection(self) -> bool:
        """Close the connection if it no longer works, so the next query opens a new one.

        Returns whether it was closed; never inside a transaction, which a new
        connection would not continue.
        """
        connection = connections[self.using]
        # A SQLite file has no server that could come back.
        if connection.in_atomic_block or connection.vendor == "sqlite":
            return False
        if connection.connection is not None and connection.is_usable():
            return False
        try:
            connection.close()
        except DatabaseError:
            connection.connection = None  # closing a broken connection can fail too
        return True

    def holds(self, pk: int, lock_key: str) -> bool:
        """Tell whether run ``pk`` still holds ``lock_key``."""
        return self.executions.filter(pk=pk, lock_key=lock_key).exists()

    def ping(self) -> None:
        """Connect if need be; raises ``DatabaseError`` while the database does not answer."""
        connections[self.using].ensure_connection()

    def renew(self, pk: int, lock_key: str) -> bool:
        """Beat for run ``pk``; False when it no longer holds ``lock_key`` (it was taken over)."""
        renewed = self.executions.filter(pk=pk, lock_key=lock_key).update(
            heartbeat_at=timezone.now()
        )
        return renewed == 1

    def running_runs(self, name: str, scope: str) -> list[tuple[int, str]]:
        """The (id, process token) of each running run of ``name`` in ``scope``."""
        running = self.executions.filter(
            command_name=name, scope=scope, status=CommandExecution.Status.RUNNING
        )
        return list(running.order_by("pk").values_list("pk", "process_token"))

    def request_stop(self, ids: list[int]) -> None:
        """Ask runs ``ids`` to stop (those still running, and not asked yet)."""
        self.executions.filter(
            pk__in=ids, status=CommandExecution.Status.RUNNING, stop_requested_at=None
        ).update(stop_requested_at=timezone.now())

    def note_late_end(self, execution: CommandExecution, note: str, **fields: Any) -> None:
        """Add what a run that lost its claim knows to its row, leaving its status as it is."""
        self.executions.filter(pk=execution.pk).update(
            error_message=Concat("error_message", Value(f" {note}")), **fields
        )

    def successor(self, execution: CommandExecution) -> int | None:
        """The first run of the same command and scope started after ``execution``."""
        return (
            self.executions.filter(
                command_name=execution.command_name, scope=execution.scope, pk__gt=execution.pk
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )

    def resume_point(self, execution: CommandExecution) -> CommandExecution | None:
        """The newest run before ``execution`` of its command that saved a cursor or succeeded.

        One statement, however many runs ended since without reaching a loop
        (a setup step that crashed, a kill -9 before the first batch): they saved
        no cursor and are passed over.
        """
        return (
            self.executions.filter(
                _DECIDES_RESUME,
                command_name=execution.command_name,
                scope=execution.scope,
                pk__lt=execution.pk,
            )
            .order_by("-executed_at", "-pk")
            .only("pk", "status", "success", "cursor")
            .first()
        )

    def record(self, **fields: Any) -> CommandExecution:
        """Insert a finished row (manual API, faked runs).

        A successful, unforced run_once row takes its command's ``once_key``
        when no row holds it yet; when one does (the command is done, or a run
        of it is live), it is recorded without it.
        """
        if fields.get("success") and fields.get("run_once") and not fields.get("forced"):
            key = command_key(fields["command_name"], fields.get("scope", ""))
            try:
                with transaction.atomic(using=self.using):
                    return self.executions.create(**fields, once_key=key)
            except IntegrityError:
                if not self.executions.filter(once_key=key).exists():
                    raise  # refused by something else
        return self.executions.create(**fields)

    def record_faked(self, name: str, scope: str, **fields: Any) -> CommandExecution:
        """Record a run_once command as done without running it (status ``faked``).

        A run of it whose outcome is unknown holds its claim: it is closed first.
        """
        now = timezone.now()
        self.executions.filter(
            lock_key=command_key(name, scope), status=Status.RUNNING, finished_at__isnull=False
        ).update(
            lock_key=None,
            once_key=None,
            status=Status.ABANDONED,
            error_message="Ended, but its end could not be recorded; marked done with --fake.",
        )
        return self.record(
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
        """Finished runs started before ``before``, except each command's newest
        success, the row holding its ``once_key`` and the row its next start resumes.

        Keeping the newest successful run of every command (per scope) means
        pruning never leaves an entry of ``requires`` unmet; keeping the row
        holding the ``once_key`` (which may be an older success than a forced
        rerun) means it never makes a done run_once command pending again;
        keeping the newest run that saved a cursor, unless a success followed
        it (what ``resume_point()`` finds), means a batch loop left unfinished
        never starts over.
        """

        def newer(condition: Q) -> Exists:
            return Exists(
                self.executions.filter(
                    condition,
                    command_name=OuterRef("command_name"),
                    scope=OuterRef("scope"),
                    # Implied by the next filter; bounds the range read in the index.
                    executed_at__gte=OuterRef("executed_at"),
                ).filter(
                    Q(executed_at__gt=OuterRef("executed_at"))
                    | Q(executed_at=OuterRef("executed_at"), pk__gt=OuterRef("pk"))
                )
            )

        return (
            self.executions.filter(
                executed_at__lt=before, lock_key__isnull=True, once_key__isnull=True
            )
            .exclude(status__in=_UNFINISHED)
            .exclude(Q(success=True) & ~newer(_SUCCEEDED))
            .exclude(Q(cursor__isnull=False) & ~newer(_DECIDES_RESUME))
        )

    def recorded_names(self, leaving_out: Iterable[str]) -> dict[str, int]:
        """Map each command name with runs (in any scope) but those of ``leaving_out``
        to its number of runs, sorted by name."""
        counted = (
            self.executions.exclude(command_name__in=list(leaving_out))
            .values_list("command_name")
            .annotate(runs=Count("pk"))
            .order_by("command_name")
        )
        return dict(counted)

    def finished_runs_of(self, names: Iterable[str]) -> QuerySet[CommandExecution]:
        """Every finished run of ``names``, in every scope."""
        return self.executions.filter(command_name__in=list(names), lock_key__isnull=True).exclude(
            status__in=_UNFINISHED
        )

    def delete(self, runs: QuerySet[CommandExecution]) -> int:
        """Delete ``runs`` in batches; return how many were deleted."""
        deleted = 0
        # Select then delete by key: MySQL cannot delete from a table its subquery reads.
        while batch := list(runs.values_list("pk", flat=True)[:_DELETE_BATCH]):
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


# -- The reads of a run's hot path, compiled by the ORM once per backend. -------
# Compiling an ORM query costs about as much Python as a durable write: the
# seeks are compiled once with placeholders standing for the command name and
# the scope, and their SQL repeated with the real values (adapted as the ORM
# adapts the value of an exact lookup).


class _Reads:
    """The compiled seeks of one database alias (SQL and parameters, no connection)."""

    def __init__(self, using: str) -> None:
        self._using = using
        self._compiled: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}
        self._unions: dict[tuple[bool, tuple[str, ...], int], str] = {}
        self._converters: dict[tuple[str, ...], list[tuple[int, Any, Any]]] = {}

    def _compile(
        self,
        key: tuple[Any, ...],
        build: Callable[[], QuerySet[Any, Any]],
        connection: BaseDatabaseWrapper,
    ) -> tuple[str, tuple[Any, ...]]:
        """The SQL of the queryset ``build()`` returns, built and compiled on first use."""
        compiled = self._compiled.get(key)
        if compiled is None:
            sql, params = build().query.get_compiler(connection=connection).as_sql()
            compiled = self._compiled[key] = (sql, tuple(params))
        return compiled

    def _seek(
        self,
        name: object,
        successful: bool,
        columns: tuple[str, ...],
        connection: BaseDatabaseWrapper,
    ) -> tuple[str, tuple[Any, ...]]:
        """``columns`` of the newest (successful) run of the command ``name``."""

        def build() -> QuerySet[Any, Any]:
            runs: QuerySet[Any, Any] = CommandExecution.objects.using(self._using).filter(
                command_name=name, scope=_SCOPE
            )
            if successful:
                runs = runs.filter(_SUCCEEDED)
            return runs.order_by("-executed_at", "-pk").values_list(*columns)[:1]

        return self._compile(
            ("seek", successful, columns, isinstance(name, RawSQL)), build, connection
        )

    def converters(
        self, columns: tuple[str, ...], connection: BaseDatabaseWrapper
    ) -> list[tuple[int, Any, tuple[Callable[..., Any], ...]]]:
        """How to convert each of ``columns`` read raw, as the ORM converts it."""
        found = self._converters.get(columns)
        if found is None:
            found = self._converters[columns] = []
            for index, name in enumerate(columns):
                column = _COLUMNS[name].get_col(_TABLE)
                convert = (
                    *connection.ops.get_db_converters(column),
                    *column.get_db_converters(connection),
                )
                if convert:
                    found.append((index, column, convert))
        return found

    def seeks(
        self,
        names: list[str],
        scope: str,
        connection: BaseDatabaseWrapper,
        *,
        successful: bool,
        columns: tuple[str, ...],
    ) -> list[tuple[str, list[Any]]]:
        """The statements reading the newest (successful) run of each of ``names``."""
        scope = _lookup_value("scope", scope, connection)
        if connection.vendor == "postgresql" and len(names) > 1:
            # Planned once, where a UNION of 100 seeks costs tens of ms to plan
            # (a lone seek plans faster than the join, so it goes the other way).
            sql, params = self._seek(RawSQL("wanted.name", ()), successful, columns, connection)
            lateral = (
                "SELECT newest.* FROM unnest(%s::text[]) AS wanted(name) "
                f"CROSS JOIN LATERAL ({sql}) AS newest"
            )
            return [(lateral, [names, *_substitute(params, {_SCOPE: scope})])]
        sql, params = self._seek(_NAME, successful, columns, connection)
        statements = []
        for start in range(0, len(names), _UNION_BATCH):
            batch = names[start : start + _UNION_BATCH]
            key = (successful, columns, len(batch))
            union = self._unions.get(key)
            if union is None:
                # A derived table may hold ORDER BY and LIMIT on every backend.
                union = self._unions[key] = " UNION ALL ".join(
                    f"SELECT * FROM ({sql}) newest_{number}" for number in range(len(batch))
                )
            values = []
            for name in batch:
                name = _lookup_value("command_name", name, connection)
                values += _substitute(params, {_NAME: name, _SCOPE: scope})
            statements.append((union, values))
        return statements

    def succeeded(
        self, name: str, scope: str, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        """A statement returning a row when ``name`` has a successful run in ``scope``."""

        def build() -> QuerySet[Any, Any]:
            runs = CommandExecution.objects.using(self._using)
            runs = runs.filter(_SUCCEEDED, command_name=_NAME, scope=_SCOPE)
            return runs.order_by().values_list("pk")[:1]

        sql, params = self._compile(("succeeded",), build, connection)
        name = _lookup_value("command_name", name, connection)
        scope = _lookup_value("scope", scope, connection)
        return sql, _substitute(params, {_NAME: name, _SCOPE: scope})

    def key_holders(
        self, key: str, once: bool, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        """A statement returning the rows holding ``key`` as ``lock_key`` (or ``once_key``)."""

        def build() -> QuerySet[Any, Any]:
            held = Q(lock_key=_KEY) | Q(once_key=_KEY) if once else Q(lock_key=_KEY)
            return CommandExecution.objects.using(self._using).filter(held).order_by()

        sql, params = self._compile(("key_holders", once), build, connection)
        return sql, _substitute(params, {_KEY: _lookup_value("lock_key", key, connection)})


# By backend class and database alias.
_READS: dict[tuple[type, str], _Reads] = {}


def _reads(using: str, connection: BaseDatabaseWrapper) -> _Reads:
    key = (type(connection), using)
    reads = _READS.get(key)
    if reads is None:
        reads = _READS[key] = _Reads(using)
    return reads


def _lookup_value(name: str, value: Any, connection: BaseDatabaseWrapper) -> Any:
    """``value`` as the ORM passes it to the database for ``field = value``."""
    field = _FIELDS[name]
    return field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)


def _substitute(params: tuple[Any, ...], values: Mapping[str, Any]) -> list[Any]:
    return [values.get(p, p) if isinstance(p, str) else p for p in params]


# -- The two writes every run makes, as SQL built once per database backend. --
# The ORM compiles the INSERT of a twenty-column row and the UPDATE that
# finishes it on every call, and builds a model instance through keyword
# arguments; on the hot path of every command that costs about as much as the
# writes themselves (see tests/benchmarks/README.md), so the recorder sends
# these prebuilt statements instead. Values still go through each
# field's ``get_db_prep_save()``, so they are adapted exactly as the ORM would;
# a scalar that repeats from run to run (a name, a flag, an empty output) is
# adapted once per backend and its adapted value reused.

_META = CommandExecution._meta
_FIELDS: dict[str, Field[Any, Any]] = {f.name: f for f in _META.concrete_fields}
_COLUMNS: dict[str, Field[Any, Any]] = {f.attname: f for f in _META.concrete_fields}
# What ``newest_runs()`` reads of a run: the summary columns, by attname and in
# field order, as ``from_db()`` takes them.
_SUMMARY = tuple(f.attname for f in _META.concrete_fields if f.name not in SUMMARY_DEFERRED)
_ATTNAMES = [f.attname for f in _META.concrete_fields]
#: What a command's state and condition need of a run: ``command_statuses(brief=True)``.
BRIEF_COLUMNS = (
    "id",
    "command_name",
    "status",
    "success",
    "dry_run",
    "executed_at",
    "finished_at",
    "source_hash",
)


@lru_cache(maxsize=8)
def _read_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """``columns`` in field order, with the three that ``newest_runs()`` reads itself."""
    wanted = {*columns, "id", "command_name", "success"}
    return tuple(name for name in _ATTNAMES if name in wanted)


@lru_cache(maxsize=8)
def _deferred_positions(columns: tuple[str, ...]) -> list[int]:
    """Where ``DEFERRED`` goes among ``columns`` (in field order) to fill every field."""
    return [index for index, name in enumerate(_ATTNAMES) if name not in columns]


_INSERTED: tuple[Field[Any, Any], ...] = tuple(f for f in _FIELDS.values() if not f.primary_key)
_INDEX = {f.name: index for index, f in enumerate(_INSERTED)}
_TABLE = str(_META.db_table)
_PK = str(_FIELDS["id"].column)
_MISSING = object()
# Positional arguments in field order (the key first): the fast path of the
# model's __init__, giving the same instance as keyword arguments.
_new_row: Callable[..., CommandExecution] = CommandExecution
# What get_db_prep_save() of a value of these types depends on: the field, the
# value and the backend, nothing else (a datetime also depends on time zone
# settings, a dict or list may be changed in place: those are adapted each time).
# An adaptation is reused only when it is itself one of these immutable types.
_REUSED_TYPES = frozenset({str, bool, int, type(None)})
_REUSED_MAX_LENGTH = 255
_REUSED_LIMIT = 4096


class _Backend:
    """The prebuilt statements and adapted scalars of one kind of database."""

    def __init__(self, connection: BaseDatabaseWrapper, returning: bool) -> None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(f.column)) for f in _INSERTED)
        values = ", ".join(["%s"] * len(_INSERTED))
        self.insert = f"INSERT INTO {quote(_TABLE)} ({columns}) VALUES ({values})"
        if returning:
            self.insert += f" RETURNING {quote(_PK)}"
        self.returning = returning
        self._quote = quote
        # What turns a fetched row's values into the model's, as the ORM does
        # (JSON, booleans and datetimes on some backends): (index, column, converters).
        self.converters: list[tuple[int, Any, list[Any]]] = []
        for index, field in enumerate(_FIELDS.values()):
            column = field.get_col(_TABLE)
            found = [
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ]
            if found:
                self.converters.append((index, column, found))
        self._updates: dict[tuple[tuple[str, ...], bool, bool], str] = {}
        self._adapted: dict[tuple[str, type, Any], Any] = {}
        # The row a bare insert would write: constant defaults, adapted once; a
        # callable default (timezone.now, dict) is called on every insert instead.
        self._called: list[tuple[int, Field[Any, Any]]] = []
        self._values: list[Any] = []
        self._params: list[Any] = []
        for index, field in enumerate(_INSERTED):
            value = field.get_default()
            if (field.has_default() and callable(field.default)) or (
                type(value) not in _REUSED_TYPES
            ):
                self._called.append((index, field))
                self._values.append(None)
                self._params.append(None)
            else:
                self._values.append(value)
                self._params.append(self.adapt(field, value, connection))

    def start_row(
        self, fields: Mapping[str, Any], connection: BaseDatabaseWrapper
    ) -> tuple[list[Any], list[Any]]:
        """The values of an inserted row in ``_INSERTED`` order, and their adapted params."""
        values = self._values.copy()
        params = self._params.copy()
        for index, field in self._called:
            if field.name not in fields:
                values[index] = value = field.get_default()
                params[index] = self.adapt(field, value, connection)
        for name, value in fields.items():
            index = _INDEX[name]
            values[index] = value
            params[index] = self.adapt(_INSERTED[index], value, connection)
        return values, params

    def update(self, names: tuple[str, ...], fenced: bool, unless_stopped: bool = False) -> str:
        """The UPDATE of ``names`` by key (and, when ``fenced``, by the lock key it holds;
        when ``unless_stopped``, only while no stop was asked of the run)."""
        sql = self._updates.get((names, fenced, unless_stopped))
        if sql is None:
            quote = self._quote
            assignments = ", ".join(f"{quote(str(_FIELDS[n].column))} = %s" for n in names)
            sql = f"UPDATE {quote(_TABLE)} SET {assignments} WHERE {quote(_PK)} = %s"
            if fenced:
                sql += f" AND {quote(str(_FIELDS['lock_key'].column))} = %s"
            if unless_stopped:
                sql += f" AND {quote(str(_FIELDS['stop_requested_at'].column))} IS NULL"
            self._updates[(names, fenced, unless_stopped)] = sql
        return sql

    def adapt(self, field: Field[Any, Any], value: Any, connection: BaseDatabaseWrapper) -> Any:
        """``field.get_db_prep_save(value, connection)``, reused for a repeating scalar."""
        kind = type(value)
        if kind not in _REUSED_TYPES or (kind is str and len(value) > _REUSED_MAX_LENGTH):
            return field.get_db_prep_save(value, connection)
        # The type is part of the key: True == 1, but they need not adapt alike.
        key = (field.name, kind, value)
        adapted = self._adapted.get(key, _MISSING)
        if adapted is _MISSING:
            adapted = field.get_db_prep_save(value, connection)
            if type(adapted) in _REUSED_TYPES:  # not an adapter object, such as Jsonb
                if len(self._adapted) >= _REUSED_LIMIT:
                    self._adapted.clear()
                self._adapted[key] = adapted
        return adapted


# By backend class and RETURNING support (a feature of the server's version).
_BACKENDS: dict[tuple[type, bool], _Backend] = {}


def _backend(connection: BaseDatabaseWrapper) -> _Backend:
    returning = bool(connection.features.can_return_columns_from_insert)
    key = (type(connection), returning)
    backend = _BACKENDS.get(key)
    if backend is None:
        backend = _BACKENDS[key] = _Backend(connection, returning)
    return backend


def _insert(connection: BaseDatabaseWrapper, fields: Mapping[str, Any]) -> CommandExecution:
    """Insert a row with ``fields`` (the rest take their defaults) and return it."""
    if not _INDEX.keys() >= fields.keys():
        CommandExecution(**fields)  # raises the model's own TypeError for an unknown name
        fields = {name: value for name, value in fields.items() if name in _INDEX}  # "pk"
    backend = _backend(connection)
    values, params = backend.start_row(fields, connection)
    # Built before the write: Python run right after a durable commit runs with
    # cold caches, so what can be done first is done first.
    row = _new_row(None, *values)
    with connection.cursor() as cursor:
        cursor.execute(backend.insert, params)
        if backend.returning:
            row.pk = cursor.fetchone()[0]
        else:
            row.pk = connection.ops.last_insert_id(cursor, _TABLE, _PK)
    row._state.adding = False
    row._state.db = connection.alias
    return row


def _select(connection: BaseDatabaseWrapper, sql: str, params: list[Any]) -> list[CommandExecution]:
    """The rows a SELECT of every column (in field order) returns, built as the ORM builds them.

    Cheaper than ``raw()``, which resolves its columns against the model on every call.
    """
    backend = _backend(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows = []
    for found in fetched:
        values = list(found)
        for index, column, converters in backend.converters:
            for converter in converters:
                values[index] = converter(values[index], column, connection)
        row = _new_row(*values)
        row._state.adding = False
        row._state.db = connection.alias
        rows.append(row)
    return rows


def _update(
    connection: BaseDatabaseWrapper,
    pk: int,
    values: Mapping[str, Any],
    lock_key: str | None,
    unless_stopped: bool = False,
) -> int:
    """Set ``values`` on row ``pk`` (only while it holds ``lock_key``, if given, and, with
    ``unless_stopped``, while no stop was asked of it); count the rows."""
    backend = _backend(connection)
    names = tuple(values)
    sql = backend.update(names, lock_key is not None, unless_stopped)
    params = [backend.adapt(_FIELDS[name], values[name], connection) for name in names]
    params.append(pk)
    if lock_key is not None:
        params.append(lock_key)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
