"""The history: the only code that reads or writes ``CommandExecution`` rows, and
what the database errors met while doing so mean: busy (retry), a broken
connection (reconnect, in ``retried()``), or unavailable (fail closed)."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from managed_commands import conf
from managed_commands.exceptions import TrackingUnavailable
from managed_commands.models import CommandCadence, CommandExecution

Status = CommandExecution.Status


_UNFINISHED = (Status.RUNNING, Status.QUEUED)


_DELETE_BATCH = 1000


# ``success=True`` compiles to a bare ``WHERE "success"``, which SQLite cannot
# use as a key of an index: these compile to ``"success" = true`` (or false)
# instead, so the seeks below reach their rows through the ``success`` index column.
_SUCCEEDED = Q(success=Value(True))
_NOT_SUCCEEDED = Q(success=Value(False))
# The list a seek is run for, as a table (``ExecutionRecorder._for_each()``), and its entry.
_LIST = "mc_listed"
_LISTED = RawSQL(f"{_LIST}.value", ())
# The runs that decide where the next start of a batch loop begins: a success
# (it starts over) or a run that saved a cursor (it continues from it, when
# that run did not finish). Every run that reaches a loop saves one, a run that
# resumes carries the cursor it resumed from, so the newest of them holds it.
_DECIDES_RESUME = Q(cursor__isnull=False) | _SUCCEEDED


#: The long columns of a run, which a status leaves to load on access.
SUMMARY_DEFERRED = ("output", "stderr", "traceback", "parameters", "cursor", "writes")
#: What the states of a command need of a run: ``command_statuses(brief=True)``.
BRIEF_COLUMNS = (
    "id",
    "command_name",
    "status",
    "success",
    "dry_run",
    "executed_at",
    "finished_at",
    "source_hash",
    "once_key",
)


def command_key(name: str, scope: str) -> str:
    """The key of command ``name`` in ``scope``: the value of its ``lock_key`` and ``once_key``.

    Both columns hold the same value: each has its own unique index, so they
    never collide, and one parameter finds the holder of either.
    """
    return hashlib.sha256(f"{scope}\0{name}".encode()).hexdigest()


def history_recorder() -> ExecutionRecorder:
    """The recorder of the history database (``MANAGED_COMMANDS["DATABASE"]`` or the routers')."""
    return ExecutionRecorder(conf.history_database())


def _keys(names: Iterable[str], scope: str) -> dict[str, str]:
    """Map the ``once_key`` of each of ``names`` in ``scope`` to its name."""
    return {command_key(name, scope): name for name in names}


def makes_done(run: CommandExecution, key: str) -> bool:
    """The rule for "done" (``ExecutionRecorder.done()``) on a run already read: a
    success holding ``key`` (its command's, ``command_key()``) as its ``once_key``."""
    return run.success and run.once_key == key


def _outcome(status: str) -> dict[str, Any]:
    """The fields saying how a run stands: ``status``, and ``success`` as it derives."""
    return {"status": status, "success": CommandExecution.success_of(status)}


def _order(run: CommandExecution) -> tuple[datetime.datetime, int]:
    """Where ``run`` stands in its command's history: the model's ordering."""
    return run.executed_at, run.pk


class Newest(NamedTuple):
    """What ``ExecutionRecorder.newest()`` read, each by command name."""

    runs: dict[str, CommandExecution]
    successes: dict[str, CommandExecution]
    #: As ``ExecutionRecorder.done()``, of the names asked.
    done: dict[str, CommandExecution]


class ExecutionRecorder:
    """Reads and writes the history of managed commands on one database."""

    def __init__(self, using: str) -> None:
        self.using = using

    @property
    def executions(self) -> QuerySet[CommandExecution]:
        return CommandExecution.objects.using(self.using)

    def done(self, names: Iterable[str], scope: str) -> dict[str, CommandExecution]:
        """Map each of ``names`` that is done in ``scope`` to the success that makes it so.

        The one rule for "done", which the claim, the status view (``newest()``)
        and so the deploy step ask: a run_once command is done when a
        successful run holds its ``once_key`` (``makes_done()``). The unique
        index on ``once_key`` admits one such row per (scope, command), so a
        done command refuses the claim's insert itself. A renamed command is
        done when one of the names it replaces is.
        """
        keys = _keys(names, scope)
        return {keys[str(run.once_key)]: run for run in self._seek(scope, holders=list(keys))}

    def newest(
        self,
        names: Iterable[str],
        scope: str,
        columns: tuple[str, ...] | None = None,
        *,
        done_of: Iterable[str] = (),
    ) -> Newest:
        """The newest run and the newest successful run of each of ``names``, and
        ``done()`` of the names ``done_of``, in one statement (``_seek()``).

        Args:
            columns: The columns the rows hold (``BRIEF_COLUMNS``, say); the
                others load on access. None: every column but the long ones
                (``SUMMARY_DEFERRED``), which a listing never prints and which
                may hold megabytes.
        """
        names = list(dict.fromkeys(names))
        keys = _keys(done_of, scope)
        runs = self._seek(scope, successes=names, others=names, holders=list(keys))
        if columns:
            runs = runs.only(*columns, "command_name", "success", "once_key")
        else:
            runs = runs.defer(*SUMMARY_DEFERRED)
        found = Newest({}, {}, {})
        # The rows come mixed: a holder is told apart by the rule for done, and
        # the newer of a command's rows is its newest run (or success).
        for run in runs:
            key = str(run.once_key)
            if key in keys and makes_done(run, key):
                found.done[keys[key]] = run
            for newest in (found.runs, found.successes) if run.success else (found.runs,):
                seen = newest.get(run.command_name)
                if seen is None or _order(run) > _order(seen):
                    newest[run.command_name] = run
        return found

    def last_successes(self, names: Iterable[str], scope: str) -> dict[str, datetime.datetime]:
        """Map each of ``names`` that has a successful run to the start of its newest one."""
        successes = self._seek(scope, successes=list(dict.fromkeys(names)))
        return dict(successes.values_list("command_name", "executed_at"))

    def _seek(
        self,
        scope: str,
        *,
        successes: Sequence[str] = (),
        others: Sequence[str] = (),
        holders: Sequence[str] = (),
    ) -> QuerySet[CommandExecution]:
        """The newest successful run of each of ``successes``, the newest other run of
        each of ``others`` unless a success started after it, and the run that
        makes done each command whose ``once_key`` is in ``holders``, in
        ``scope``: one statement.

        Each is one entry of an index, found by one seek per name (or key):
        ``mc_exec_name_scope_success_id`` for the newest success or other run
        (the newer of the two is the command's newest run: a seek of the newest
        run itself, MariaDB plans by sorting every run of the command), the
        unique index on ``once_key`` for a holder. So the cost grows with the
        number of names, never with the history, and the statement is compiled
        once however many names it seeks.
        """
        newest = self.executions.filter(command_name=_LISTED, scope=scope).order_by(
            "-executed_at", "-pk"
        )
        seeks = [
            (successes, newest.filter(_SUCCEEDED)),
            (others, newest.filter(_NOT_SUCCEEDED)),
            # makes_done() in SQL.
            (holders, self.executions.filter(_SUCCEEDED, once_key=_LISTED).order_by()),
        ]
        parts: list[str] = []
        params: list[Any] = []
        for listed, seek in seeks:
            if listed:
                sql, seek_params = self._for_each(listed, seek)
                parts.append(sql)
                params += seek_params
        if not parts:
            return self.executions.none()
        # A derived table: MariaDB would otherwise run the seeks once per row of the
        # history, as a semi-join.
        chosen = RawSQL(f"SELECT id FROM ({' UNION ALL '.join(parts)}) mc_seeks", params)
        runs = self.executions.filter(pk__in=chosen).order_by()
        if not others:
            return runs
        # The newest other run is left out when a success started after it: one
        # more seek of that index (a "newer success exists" test would read every
        # success of the command on MariaDB, which bounds no range by an outer row).
        last_success = self.executions.filter(
            _SUCCEEDED, command_name=OuterRef("command_name"), scope=OuterRef("scope")
        ).order_by("-executed_at", "-pk")
        since = Coalesce(Subquery(last_success.values("executed_at")[:1]), "executed_at")
        return runs.filter(_SUCCEEDED | Q(executed_at__gte=since))

    def _for_each(
        self, listed: Sequence[str], seek: QuerySet[CommandExecution]
    ) -> tuple[str, list[Any]]:
        """SQL selecting, as ``id``, the first row of ``seek`` for each entry of ``listed``
        (``seek`` names the entry as ``_LISTED``), and its parameters.

        Raw SQL around the ORM's seek: the ORM cannot select from a list of
        values. PostgreSQL unnests an array and SQLite reads a JSON array (one
        parameter, whatever the length); MySQL and MariaDB read a union of
        one-row selects (MariaDB 10.5 has no ``JSON_TABLE``).
        """
        sql, params = seek.values("pk")[:1].query.get_compiler(self.using).as_sql()
        vendor = connections[self.using].vendor
        rows: str
        entries: list[Any]
        if vendor == "postgresql":
            rows, entries = f"unnest(%s::text[]) {_LIST}(value)", [listed]
        elif vendor == "sqlite":
            rows, entries = f"json_each(%s) {_LIST}", [json.dumps(listed)]
        else:
            selects = " UNION ALL ".join(["SELECT %s AS value"] * len(listed))
            rows, entries = f"({selects}) {_LIST}", list(listed)
        return f"SELECT ({sql}) AS id FROM {rows}", [*params, *entries]

    def claim(self, **fields: Any) -> CommandExecution:
        """Insert a running (or queued) row; raises ``IntegrityError`` when ``lock_key``
        or ``once_key`` is already held."""
        fields.update(_outcome(fields.get("status", Status.RUNNING)))
        if connections[self.using].in_atomic_block:
            # A failed INSERT must not abort the caller's transaction.
            with transaction.atomic(using=self.using):
                return self.executions.create(**fields)
        return self.executions.create(**fields)

    def key_holders(self, key: str, *, once: bool) -> list[CommandExecution]:
        """The rows holding ``key`` as their ``lock_key`` or, with ``once``, their ``once_key``.

        What a refused claim reads to learn which unique key refused it: at
        most two rows (a live run_once run holds both keys on one row).
        """
        held = Q(lock_key=key) | Q(once_key=key) if once else Q(lock_key=key)
        return list(self.executions.filter(held).order_by())

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
            **_outcome(Status.RUNNING), **fields
        )
        return self.executions.get(pk=pk) if started else None

    def add_origin(self, row: CommandExecution, **values: Any) -> None:
        """Add ``values`` to the ``origin`` of ``row``, as read (a queued row no worker
        can have started yet)."""
        row.origin = {**(row.origin or {}), **values}
        self.executions.filter(pk=row.pk).update(origin=row.origin)

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
                **_outcome(status),
                lock_key=None,
                once_key=None,
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
        attempt that failed has already cleared). A forced success (``--rerun``)
        takes the key when no row holds it, so the command is done by it.
        """
        fields["lock_key"] = None
        if execution.run_once and not fields.get("success", execution.success):
            fields["once_key"] = None
        for name, value in fields.items():
            setattr(execution, name, value)
        if self._held(execution.pk, lock_key).update(**fields) != 1:
            return False
        if execution.run_once and execution.forced and execution.success:
            self._take_once_key(execution)
        return True

    def _take_once_key(self, run: CommandExecution) -> None:
        """Give successful run_once ``run`` its command's ``once_key``, unless a row holds it."""
        key = command_key(run.command_name, run.scope)
        try:
            # A refused UPDATE must not abort the caller's transaction.
            with transaction.atomic(using=self.using):
                if self.executions.filter(pk=run.pk).update(once_key=key):
                    run.once_key = key
        except IntegrityError:
            pass  # the command is done by another run already

    def _held(self, pk: int, lock_key: str | None) -> QuerySet[CommandExecution]:
        """Row ``pk``, while it holds ``lock_key`` (a run without a lock has none to lose)."""
        rows = self.executions.filter(pk=pk)
        return rows if lock_key is None else rows.filter(lock_key=lock_key)

    def mark_ended(self, execution: CommandExecution, lock_key: str | None, **times: Any) -> bool:
        """Mark a run ended whose end could not be written: ``times`` (its ``finished_at``
        and ``duration``) only, on a row left ``running`` with its claim (see
        ``CommandExecution.outcome_unknown``); False when the row no longer holds it."""
        return self._held(execution.pk, lock_key).filter(status=Status.RUNNING).update(**times) == 1

    def save_progress(self, pk: int, lock_key: str | None, values: dict[str, Any]) -> bool:
        """Write a batch loop's cursor and progress on run ``pk``, fenced like ``finish()``
        and only while no stop was asked of it; False when either stopped the write."""
        return self._held(pk, lock_key).filter(stop_requested_at=None).update(**values) == 1

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
        return self._held(pk, lock_key).exists()

    def ping(self) -> None:
        """Connect if need be; raises ``DatabaseError`` while the database does not answer."""
        connections[self.using].ensure_connection()

    def renew(self, pk: int, lock_key: str) -> bool:
        """Beat for run ``pk``; False when it no longer holds ``lock_key`` (it was taken over)."""
        return self._held(pk, lock_key).update(heartbeat_at=timezone.now()) == 1

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

    def record(self, status: str, **fields: Any) -> CommandExecution:
        """Insert a finished row ending with ``status`` (manual API, faked runs).

        A successful run_once row takes its command's ``once_key`` when no row
        holds it yet; when one does (the command is done, or a run of it is
        live), it is recorded without it.
        """
        fields.update(_outcome(status))
        if fields["success"] and fields.get("run_once"):
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
            **_outcome(Status.ABANDONED),
            lock_key=None,
            once_key=None,
            error_message="Ended, but its end could not be recorded; marked done with --fake.",
        )
        return self.record(
            command_name=name,
            scope=scope,
            status=Status.FAKED,
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
        CommandCadence.objects.using(self.using).all().delete()

    def cadences(self, names: Sequence[str], scope: str) -> dict[str, CommandCadence]:
        """The cadence row of each of ``names`` in ``scope``, recording now as its
        ``first_seen_at`` where there is none yet.

        One read, and one insert when some are new (a row another process
        inserted meanwhile is kept: theirs and ours were seen at the same moment).
        """
        rows = CommandCadence.objects.using(self.using)
        found = {row.command_name: row for row in rows.filter(scope=scope, command_name__in=names)}
        new = [CommandCadence(command_name=n, scope=scope) for n in names if n not in found]
        if new:
            rows.bulk_create(new, ignore_conflicts=True)
            found.update((row.command_name, row) for row in new)
        return found

    def claim_late_alert(self, name: str, scope: str, after: int) -> bool:
        """Record that the late spell of ``name`` in ``scope`` following run ``after`` (its
        last success; 0 for none) is being logged; False when a process already did.

        A conditional update, as the claim is an insert: of two processes
        looking at once, one changes the row and logs.
        """
        unlogged = Q(late_alerted_after__isnull=True) | ~Q(late_alerted_after=after)
        rows = CommandCadence.objects.using(self.using).filter(
            unlogged, command_name=name, scope=scope
        )
        return rows.update(late_alerted_after=after) == 1


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


def retried(
    recorder: ExecutionRecorder,
    attempt: Callable[[], T],
    deadline: float,
    announce: Callable[[str], None],
    landed: Callable[[], T | None] | None = None,
) -> T:
    """Return ``attempt()``, called again on a new connection each time its connection
    broke (a failover, a restart, an idle-connection killer) until ``deadline`` (a
    ``time.monotonic()`` value); any other error is raised as it is.

    A write that failed with its connection may have landed all the same:
    ``landed()``, when given, reads that first, and what it finds (not None) is
    returned instead of writing again. The one place a run retries across reconnects.
    """
    while True:
        try:
            return attempt()
        except DatabaseError as exc:
            if not recorder.drop_broken_connection():
                raise
            found = _after_reconnect(recorder, exc, deadline, landed or recorder.ping, announce)
            if landed is not None and found is not None:
                return found


def _after_reconnect(
    recorder: ExecutionRecorder,
    error: DatabaseError,
    deadline: float,
    read: Callable[[], T],
    announce: Callable[[str], None],
) -> T:
    """Once a broken connection was dropped: wait until ``read()`` works on a new one.

    Backs off between attempts and raises ``error`` once ``deadline`` has passed.
    Once the first attempt failed, passes ``announce`` the line saying that it
    waits: a start must not wait ``RECONNECT_TIMEOUT`` in silence.
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
