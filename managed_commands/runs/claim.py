"""Claim a run and keep its lease.

The claim is the run's own row: it is inserted with ``lock_key`` set, and a unique
index on ``lock_key`` lets exactly one row per (scope, command) hold it, on every
backend; a run_once run (not ``--rerun``) also sets ``once_key``, so once it has
succeeded no second run can. While the run lives, its lease (a heartbeat, and the
process that holds it) tells other processes whether the holder is still there; a
holder that is gone is taken over. On SQLite the heartbeat is a file beside the
database, so it never waits on the database's one writer.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, NamedTuple

from django.db import DatabaseError, IntegrityError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from managed_commands import conf
from managed_commands.conf import select_tenant, selected_tenant, tasks_api
from managed_commands.exceptions import LockHeld, OutcomeUnknown
from managed_commands.formatting import local_time
from managed_commands.models import CommandExecution
from managed_commands.origin import host_identity, process_is_running
from managed_commands.recorder import ExecutionRecorder, command_key, is_busy, makes_done, retried
from managed_commands.runs.capture import clean_text
from managed_commands.runs.limits import InterruptGuard
from managed_commands.signals import run_ended

logger = logging.getLogger("managed_commands")

_FIRST_DELAY = 0.02
_MAX_DELAY = 0.5

# Locks this process holds, by key, with the thread holding each: a holder
# that is this very thread can only be a recursive call, which would wait forever.
_held_here: dict[str, int] = {}

#: The ``lock_key`` (and ``once_key``) of a command ``name`` in ``scope``.
lock_key = command_key


def describe_holder(holder: CommandExecution) -> str:
    if holder.status == CommandExecution.Status.QUEUED:
        enqueued = local_time(holder.enqueued_at or holder.executed_at)
        return f"run #{holder.pk}, enqueued for a task worker on {enqueued}"
    return (
        f"run #{holder.pk}, process {holder.pid} on host {holder.hostname or '?'}, "
        f"running since {local_time(holder.executed_at)}"
    )


def settle_advice(run: CommandExecution) -> str:
    """What to do about run_once ``run``, which ended but whose end could not be recorded."""
    name = run.command_name
    return (
        f"check whether its work is complete; if it is, mark it done with 'python manage.py "
        f"run_pending_commands --fake {name}', if not, run it again with 'python manage.py "
        f"{name} --rerun'."
    )


class RunClaim:
    """Takes the lock of one command for one run (see the module docstring)."""

    def __init__(
        self,
        recorder: ExecutionRecorder,
        *,
        name: str,
        scope: str,
        exclusive: bool,
        run_once: bool,
        wait_timeout: float,
        lease_seconds: float,
        reconnect_deadline: float,
        guard: InterruptGuard,
        on_wait: Callable[[CommandExecution], None],
        on_reconnect: Callable[[str], None],
    ) -> None:
        self.recorder = recorder
        self.name = name
        self.scope = scope
        self.key = lock_key(name, scope) if exclusive else None
        self.run_once = run_once
        #: When the run_once command turned out done: the start of the run holding its key.
        self.done_at: datetime.datetime | None = None
        self.wait_timeout = wait_timeout
        self.lease_seconds = lease_seconds
        self.reconnect_deadline = reconnect_deadline
        self.guard = guard
        self.on_wait = on_wait
        self.on_reconnect = on_reconnect
        #: The row holding the claim, from the moment its insert landed (or once adopted).
        self.row: CommandExecution | None = None

    def acquire(self, fields: dict[str, Any]) -> None:
        """Insert the running row as ``row``; ``row`` stays None when a run_once command
        turned out done (``done_at`` then tells since when).

        A signal held back during the insert is raised once it returns: the row
        it inserted is ``row`` by then, for the run to end it.
        """
        deadline = time.monotonic() + self.wait_timeout
        delay = _FIRST_DELAY
        announced = False
        keys = {"lock_key": self.key}
        if self.run_once:
            keys["once_key"] = self.key
        while True:
            try:
                # A failover may break the connection after the insert landed:
                # then this process's own running row is the claim.
                self.row = retried(
                    self.recorder,
                    partial(self._insert, keys, fields),
                    self.reconnect_deadline,
                    self.on_reconnect,
                    landed=partial(self._own_row, fields, timezone.now()),
                )
                break
            except IntegrityError:
                if self.key is None:
                    raise
                holder, done = self._refused_by(self.key)
                if done is not None:
                    self.done_at = done.executed_at
                    return
                if holder is None:
                    if time.monotonic() < deadline:
                        continue  # released between our insert and our look
                    raise  # refused by no key we know of
                if holder.outcome_unknown and self.run_once:
                    raise OutcomeUnknown(
                        f"'{self.name}' was not run: its run #{holder.pk} (process "
                        f"{holder.pid} on host {holder.hostname or '?'}, started "
                        f"{local_time(holder.executed_at)}) ended, but its end could not be "
                        f"recorded, so its outcome is unknown: {settle_advice(holder)}"
                    ) from None
                reason = (
                    "it ended, but its end could not be recorded"
                    if holder.outcome_unknown  # a repeatable command, or --rerun: run it again
                    else why_gone(holder, self.lease_seconds)
                )
                if reason:
                    with self.guard.deferred():
                        # Hook for the alerts (#26): only the takeover whose conditional
                        # write closed the run logs it, so it is logged once.
                        if self.recorder.abandon(holder, reason):
                            abandoned = CommandExecution.Status.ABANDONED
                            run_ended(holder, status=abandoned, error=f"Abandoned: {reason}.")
                    continue
                self._refuse_recursion(holder)
                if not announced and self.wait_timeout > 0:
                    self.on_wait(holder)
                    announced = True
            except DatabaseError as exc:
                if not is_busy(exc):
                    raise
                holder = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self._gave_up(holder))
            # The next insert tells whether the holder succeeded meanwhile.
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY)
        if self.key:
            _held_here[self.key] = threading.get_ident()

    def _insert(self, keys: dict[str, str | None], fields: dict[str, Any]) -> CommandExecution:
        # Set inside the hold-back: a signal raised as the insert returns finds the row.
        with self.guard.deferred():
            self.row = self.recorder.claim(**keys, **fields)
        return self.row

    def adopt(self, row: CommandExecution) -> None:
        """Hold ``row``, a queued row a task worker started for this run (see runs.queued)."""
        if self.key:
            _held_here[self.key] = threading.get_ident()
        self.row = row

    def _own_row(
        self, fields: dict[str, Any], started: datetime.datetime
    ) -> CommandExecution | None:
        """The running row this very process inserted for this claim, if one landed."""
        if self.key in _held_here:
            return None  # another thread here holds it: this insert cannot have landed
        return self.recorder.running_row_of(
            self.name,
            self.scope,
            self.key,
            since=started,
            pid=fields["pid"],
            process_token=fields["process_token"],
            host_id=fields["host_id"],
        )

    def _refused_by(self, key: str) -> tuple[CommandExecution | None, CommandExecution | None]:
        """Read which key refused the insert, in one statement: (the row holding
        ``lock_key``, the success that makes the command done), each None when no
        row holds it."""
        holder = done = None
        for row in self.recorder.key_holders(key, once=self.run_once):
            if row.lock_key == key:
                holder = row
            elif makes_done(row, key):
                done = row
            elif row.once_key == key:
                # A finished run that did not succeed holds no once_key; one
                # written by hand (or by an older version) must not block forever.
                with self.guard.deferred():
                    self.recorder.free_once_key(row)
        return holder, done

    def release(self) -> None:
        if self.key:
            _held_here.pop(self.key, None)

    @property
    def in_callers_transaction(self) -> bool:
        return connections[self.recorder.using].in_atomic_block

    def _refuse_recursion(self, holder: CommandExecution) -> None:
        recursive = _held_here.get(self.key or "") == threading.get_ident()
        if recursive and is_this_process(holder):
            raise LockHeld(
                f"Cannot start '{self.name}': this process is already running it "
                f"({describe_holder(holder)}); a command cannot call itself."
            )

    def _gave_up(self, holder: CommandExecution | None) -> str:
        held_by = describe_holder(holder) if holder else "the database stayed locked"
        if not self.wait_timeout:
            return (
                f"Cannot start '{self.name}': another run holds its lock ({held_by}), and "
                f"this start does not wait: nothing was started or enqueued. Try again once "
                f"it has finished."
            )
        return (
            f"Cannot start '{self.name}': another run holds its lock ({held_by}). "
            f"Gave up after waiting {self.wait_timeout:g} s. Try again once it has finished, "
            f"or raise MANAGED_COMMANDS['WAIT_TIMEOUT']."
        )


def is_this_process(holder: CommandExecution) -> bool:
    """Tell whether ``holder`` is a run of this very process."""
    return holder.pid == os.getpid() and _same_host(holder)


def _same_host(holder: CommandExecution) -> bool:
    identity = host_identity()
    return bool(identity) and holder.host_id == identity


def why_gone(
    holder: CommandExecution, lease_seconds: float, now: datetime.datetime | None = None
) -> str | None:
    """Return why ``holder`` no longer holds its run, or None while it may still be alive.

    A run enqueued for a task worker is gone once it waited longer than
    ``QUEUE_TIMEOUT`` for one, or before that once its task backend tells that
    its task will never start it (``lost_task()``); a running one is
    judged by its process when this host can check it, by its heartbeat lease
    otherwise.
    """
    now = now or timezone.now()
    if holder.status == CommandExecution.Status.QUEUED:
        waited = (now - (holder.enqueued_at or holder.executed_at)).total_seconds()
        limit = conf.queue_timeout()
        if waited <= limit:
            # Its task backend may know that no worker will ever start it.
            return lost_task(holder)
        return (
            f"enqueued {waited:.0f} s ago and never started by a worker (QUEUE_TIMEOUT {limit:g} s)"
        )
    if holder.pid and _same_host(holder):
        if process_is_running(holder.pid, holder.process_token):
            return None
        return f"process {holder.pid} on {holder.hostname} is no longer running"
    silent = (now - last_heard(holder)).total_seconds()
    if silent <= lease_seconds:
        return None
    return (
        f"no heartbeat from process {holder.pid} on {holder.hostname or 'an unknown host'} "
        f"for {silent:.0f} s (lease {lease_seconds:g} s)"
    )


#: The queued runs whose backend could not be asked, warned about once.
_UNANSWERED: set[int] = set()

#: What a known misconfiguration looks like in a failed task, and what to do about it.
_HINTS = {
    # RQ runs the job with its own Job class, which cannot call a django.tasks Task.
    "'Task' object is not callable": "start the RQ workers with --job-class django_tasks_rq.Job",
    # The worker's Celery app never imported managed_commands.tasks.
    "NotRegistered": "the workers' Celery app must find the task: call app.autodiscover_tasks()",
}


def lost_task(row: CommandExecution) -> str | None:
    """Why queued run ``row`` will never be started by its task, in its backend's words.

    Asks the task's backend (``get_result()``, the result API of ``django.tasks``):
    a task that failed, or ended, without starting the run, or one the backend
    no longer knows, will never start it. None while the task may still start
    it, and whenever the backend cannot tell: it does not support
    ``get_result()`` (Celery without a result backend), it cannot be reached,
    or the task is not enqueued yet (no ``task_id``).
    """
    api = tasks_api()
    if api is None or not row.task_id:
        return None
    alias = (row.origin or {}).get("task_backend") or "default"
    try:
        backend = api.task_backends[alias]
        if not backend.supports_get_result:
            return None
        result = backend.get_result(row.task_id)
    except Exception as exc:  # the backend's hint must never fail a claim
        # Django's and the backport's own class alike (django-tasks-rq raises the latter).
        if type(exc).__name__ == "TaskResultDoesNotExist":
            return f"task backend '{alias}' no longer knows its task {row.task_id}"
        if row.pk not in _UNANSWERED:  # once per run: a start waiting asks on every try
            _UNANSWERED.add(row.pk)
            logger.warning(
                "Could not ask task backend '%s' about the task of queued run #%s; it is "
                "taken over only after QUEUE_TIMEOUT",
                alias,
                row.pk,
                exc_info=True,
            )
        return None
    if result.status == "SUCCESSFUL":
        return f"its task {row.task_id} ended on task backend '{alias}' without starting it"
    if result.status != "FAILED":
        return None
    said = _task_error(result.errors[-1]) if result.errors else "no error given"
    hint = next((f" ({hint})" for known, hint in _HINTS.items() if known in said), "")
    return f"its task {row.task_id} failed on task backend '{alias}': {said}{hint}"


def _task_error(error: Any) -> str:
    """``TypeError: 'Task' object is not callable``: the line of ``error``'s traceback
    naming its exception (the first such, before any raised while handling it)."""
    short = str(error.exception_class_path).rpartition(".")[2]
    lines = [line.strip() for line in str(error.traceback or "").splitlines() if line.strip()]
    named = [line for line in lines if line == short or line.startswith(f"{short}:")]
    found = named[0] if named else (lines[-1] if lines else short)
    return clean_text(found)[:500]


def last_heard(holder: CommandExecution) -> datetime.datetime:
    """When ``holder`` last gave a sign of life: its newest heartbeat (in its row, or
    in its beat file on SQLite), else its start."""
    last_sign = holder.heartbeat_at or holder.executed_at
    if holder._state.db and holder.pk:
        in_file = file_beat(holder._state.db, holder.pk)
        last_sign = max(last_sign, in_file) if in_file else last_sign
    return last_sign


class _Beat(NamedTuple):
    using: str
    tenant: Any
    lock_key: str
    interval: float
    on_lost: Callable[[], None]


class _Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, _Beat] = {}
        # The beat files written so far, removed when their run ends.
        self._touched: dict[int, Path] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(
        self,
        using: str,
        pk: int,
        lock_key: str,
        lease_seconds: float,
        on_lost: Callable[[], None],
    ) -> None:
        """Beat for run ``pk`` while it holds ``lock_key``; call ``on_lost`` if it stops holding it.

        The beat writes on ``using`` as seen from this thread's connection
        (the tenant selected on it).
        """
        interval = max(lease_seconds / 4, 0.05)
        beat = _Beat(using, selected_tenant(using), lock_key, interval, on_lost)
        with self._lock:
            live = self._live
            shortest = min(other.interval for other in live.values()) if live else None
            live[pk] = beat
            thread = self._thread
            # A forked child inherits the object but not the thread: start its own.
            if thread is None or not thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="managed_commands-heartbeat", daemon=True
                )
                self._thread.start()
            elif shortest is not None and beat.interval < shortest:
                self._wake.set()

    def unregister(self, pk: int) -> None:
        """Stop beating for run ``pk``; called before its end releases the claim, so that
        a beat already on its way finds the claim gone without judging it taken over."""
        with self._lock:
            self._live.pop(pk, None)
            touched = self._touched.pop(pk, None)
        if touched:
            remove_file(touched)

    def _interval(self) -> float:
        with self._lock:
            return min((beat.interval for beat in self._live.values()), default=60.0)

    def _run(self) -> None:
        last_beat = time.monotonic()
        opened: set[str] = set()
        while True:
            due = last_beat + self._interval() - time.monotonic()
            if self._wake.wait(max(due, 0.0)):
                # A run with a shorter lease arrived: recompute when to beat.
                self._wake.clear()
                continue
            last_beat = time.monotonic()
            with self._lock:
                live = list(self._live.items())
            for pk, beat in live:
                opened.add(beat.using)
                self._beat(pk, beat)
            # One connection per database while runs beat on it (not one per
            # beat, which a server at max_connections could refuse), none after.
            for using in opened - {beat.using for _, beat in live}:
                connections[using].close()
            opened.intersection_update(beat.using for _, beat in live)

    def _touch(self, pk: int, file: Path) -> None:
        try:
            touch_file(file)
        except OSError as exc:
            logger.warning(
                "managed_commands: the heartbeat of run #%s could not touch %s (%s)", pk, file, exc
            )
            return
        with self._lock:
            ended = pk not in self._live
            if not ended:
                self._touched[pk] = file
        if ended:  # the run ended while this beat was on its way
            remove_file(file)

    def _beat(self, pk: int, beat: _Beat) -> None:
        try:
            # The row may live in a tenant's schema (django-tenants), which
            # this thread's own connection has not selected.
            select_tenant(beat.using, beat.tenant)
            recorder = ExecutionRecorder(beat.using)
            # On SQLite the run beats in a file instead of its row (see beatfile).
            # The start of the row is the first sign of life: the file is
            # written at the first beat only, so a short run touches no file.
            file = side_file(beat.using, pk)
            if file:
                # Only read the database: a write here could fail the command's own.
                self._touch(pk, file)
                held = recorder.holds(pk, beat.lock_key)
            else:
                held = recorder.renew(pk, beat.lock_key)
        except DatabaseError as exc:
            logger.warning(
                "managed_commands: the heartbeat of run #%s could not be written (%s: %s); "
                "trying again at the next beat.",
                pk,
                type(exc).__name__,
                str(exc).strip(),
            )
            # A broken connection stays broken: the next beat opens a new one.
            connections[beat.using].close_if_unusable_or_obsolete()
            return
        if held:
            return
        with self._lock:
            # A run stops beating before its end releases the claim: one that
            # stopped meanwhile released it itself, and was not taken over.
            if self._live.pop(pk, None) is None:
                return
        logger.error(
            "managed_commands: run #%s no longer holds its claim: another process took it "
            "over after its lease ran out. Stopping the run.",
            pk,
        )
        beat.on_lost()


heartbeat = _Heartbeat()
_POLL_SECONDS = 0.02
_EXIT_WAIT_SECONDS = 30.0
_watchers: list[tuple[threading.Thread, str]] = []


def in_test_transaction(using: str) -> bool:
    """Tell whether the connection is inside a transaction a test case opened."""
    blocks = connections[using].atomic_blocks
    return any(getattr(block, "_from_testcase", False) for block in blocks)


def keep_if_rolled_back(execution: CommandExecution, using: str) -> None:
    """Write ``execution`` again once the caller's transaction has ended, if it rolled back."""
    caller = connections[using]
    fields = {
        field.attname: getattr(execution, field.attname)
        for field in CommandExecution._meta.concrete_fields
        if not field.primary_key
    }
    watcher = threading.Thread(
        target=_keep,
        args=(caller, using, selected_tenant(using), execution.pk, fields),
        name="managed_commands-failure-keeper",
        daemon=True,
    )
    watcher.start()
    _watchers[:] = [(other, alias) for other, alias in _watchers if other.is_alive()]
    _watchers.append((watcher, using))


def _keep(
    caller: BaseDatabaseWrapper, using: str, tenant: Any, pk: int, fields: dict[str, Any]
) -> None:
    # The caller's connection belongs to its thread: only its plain attributes
    # are read here. Autocommit comes back once the commit or rollback is done.
    while not (caller.autocommit or caller.connection is None):
        time.sleep(_POLL_SECONDS)
    try:
        select_tenant(using, tenant)
        recorder = ExecutionRecorder(using)
        if not recorder.executions.filter(pk=pk).exists():
            kept = recorder.record(**fields)
            logger.info("Failed run #%s was rolled back with its caller: kept as #%s", pk, kept.pk)
    except DatabaseError:
        logger.exception("Could not keep the record of failed run #%s after a rollback", pk)
    finally:
        connections[using].close()


@atexit.register
def _finish_keeping() -> None:
    """Before the process exits, let every watcher write what it must."""
    for watcher, using in _watchers:
        if watcher.is_alive():
            # A transaction still open now never commits: end it, so the
            # watcher can see it ended (and, on SQLite, write at all).
            connections[using].close()
        watcher.join(_EXIT_WAIT_SECONDS)


def side_file(using: str, pk: int, kind: str = "beat") -> Path | None:
    """The ``beat`` (or ``stop``) file of run ``pk`` when ``using`` is a SQLite file, else None."""
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        return None
    return _folder(str(connection.settings_dict["NAME"])) / f"{pk}.{kind}"


@lru_cache(maxsize=16)
def _folder(database_name: str) -> Path:
    """The folder of beat files beside a database file (resolved once: it is on every run)."""
    database = Path(database_name).resolve()
    return database.parent / f".{database.name}.managed_commands"


def touch_file(path: Path) -> None:
    """Beat: create the file, or set its modification time to now."""
    try:
        os.utime(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def file_beat(using: str, pk: int) -> datetime.datetime | None:
    """When run ``pk`` last beat in its file (None without one)."""
    path = side_file(using, pk)
    if path is None:
        return None
    try:
        modified = path.stat().st_mtime
    except OSError:
        return None
    return datetime.datetime.fromtimestamp(modified, datetime.timezone.utc)


def remove_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def write_stop_file(path: Path, process_token: str) -> None:
    """Write the stop request of the run held by ``process_token``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(process_token)


def stop_file_asks(path: Path, process_token: str) -> bool:
    """Whether a stop was asked of this very run (a file left for an earlier database's
    run with the same id does not count)."""
    try:
        return path.read_text() == process_token
    except OSError:
        return False
