"""Where each managed command stands: pending, done or repeatable; last run; source changed.

Shared by ``show_managed_commands``, the ``migrate`` notice, the deploy step
and the admin overview, so they all agree on what "pending" means.

Orphans are the other side: commands whose runs are recorded but whose code is
gone (deleted, or renamed without ``replaces``). ``show_managed_commands --orphans``
lists those names and ``prune_command_history --orphans`` deletes their runs."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.core.management import get_commands
from django.db import DatabaseError, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from managed_commands import conf
from managed_commands.conf import current_scope
from managed_commands.definition import Definition
from managed_commands.formatting import human_duration, local_time
from managed_commands.loader import discover
from managed_commands.models import CommandCadence, CommandExecution
from managed_commands.recorder import (
    BRIEF_COLUMNS,
    ExecutionRecorder,
    history_recorder,
    unavailable,
)
from managed_commands.requirements import unapplied_migrations
from managed_commands.runs import last_heard, why_gone
from managed_commands.signals import admin_url, alerts, command_late, run_ended

logger = logging.getLogger("managed_commands")

__all__ = [
    "CommandState",
    "CommandStatus",
    "Orphan",
    "command_statuses",
    "describe_gone",
    "orphans",
    "readable_statuses",
    "recover_gone",
    "run_gone",
]


class CommandState(models.TextChoices):
    """What a command is, in one scope.

    From its definition and history (``CommandStatus.state``): a run_once
    command is ``PENDING`` until it is ``DONE`` (``ExecutionRecorder.done()``:
    a success holds its ``once_key``); any other is ``REPEATABLE``. The
    listings show the command in one of the other states instead when its
    newest run says more (``CommandStatus.shown_state``).
    """

    PENDING = "pending", _("pending")
    DONE = "done", _("done")
    #: Not run_once: never pending nor done.
    REPEATABLE = "repeatable", _("repeatable")
    # Shown in place of those when the newest run says more (``shown_state``).
    RUNNING = "running", _("running")
    #: Recorded running, but its process is gone: it died, or went silent past its lease.
    GONE = "gone", _("gone")
    #: The newest run ended, but its end could not be recorded (``outcome_unknown``).
    OUTCOME_UNKNOWN = "outcome_unknown", _("outcome unknown")
    #: Enqueued for a task worker that has not started it yet.
    QUEUED = "queued", _("queued")
    #: The newest run failed, and a run_once command has never succeeded. For a
    #: recurring command (``expected_every``), the issue's "failing".
    FAILED = "failed", _("failed")
    #: A recurring command with no successful start within ``expected_every +
    #: expected_grace`` of the last one (or of when its cadence was first seen).
    LATE = "late", _("late")
    #: Running for longer than its ``expected_duration_max``.
    OVERRUNNING = "overrunning", _("overrunning")


@dataclass(frozen=True)
class CommandStatus:
    """One managed command and its history in one scope.

    Attributes:
        command: The command's definition, as discovered.
        last_run: Its newest run in the scope, if any.
        last_success: Its newest successful run in the scope, if any.
        unapplied_migrations: The ``"app_label.migration"`` entries of its
            ``requires`` not applied yet.
        done_by: The success that makes a run_once command done (it holds the
            ``once_key`` of the command or of a name it replaces), if any.
        cadence: For a command with ``expected_every``, its ``CommandCadence``
            in the scope (when its cadence was first seen, which late spell was
            logged); None for any other.
        scope: The scope of the history read.
        read_at: When the history was read: the moment ``late`` and
            ``overrunning`` are judged at.
    """

    command: Definition
    last_run: CommandExecution | None
    last_success: CommandExecution | None
    unapplied_migrations: frozenset[str] = field(default=frozenset())
    done_by: CommandExecution | None = None
    cadence: CommandCadence | None = None
    scope: str = ""
    read_at: datetime.datetime = field(default_factory=timezone.now)

    @property
    def state(self) -> CommandState:
        """``PENDING`` or ``DONE`` for a run_once command, else ``REPEATABLE``."""
        if not self.command.run_once:
            return CommandState.REPEATABLE
        return CommandState.DONE if self.done_by is not None else CommandState.PENDING

    @property
    def running(self) -> bool:
        """True while the newest run is in progress: recorded running, its process
        alive, its end not yet reached."""
        return (
            self.last_run is not None
            and self.last_run.status == CommandExecution.Status.RUNNING
            and not self.outcome_unknown
            and self.gone is None
        )

    @property
    def outcome_unknown(self) -> bool:
        """True when the newest run ended but its end could not be recorded."""
        return self.last_run is not None and self.last_run.outcome_unknown

    @cached_property
    def gone(self) -> str | None:
        """Why the newest run, recorded running, is no longer: its process died, or
        went silent past its lease (``run_gone()``); None otherwise."""
        return None if self.last_run is None else run_gone(self.last_run)

    @property
    def last_heard(self) -> datetime.datetime | None:
        """When the process of a ``gone`` run last gave a sign of life; None for any other."""
        return last_heard(self.last_run) if self.gone and self.last_run else None

    @property
    def queued(self) -> bool:
        """True while the newest run waits for a task worker (``enqueue_command``)."""
        return self.last_run is not None and self.last_run.status == CommandExecution.Status.QUEUED

    @property
    def failed_last(self) -> bool:
        """True when the newest run ended without success, whatever the state.

        A dry run, however it ended, changed nothing: it is no failure of the command.
        """
        run = self.last_run
        return (
            run is not None
            and not run.success
            and not (self.running or self.queued or self.gone or self.outcome_unknown)
            and not run.dry_run
        )

    @property
    def late_since(self) -> datetime.datetime | None:
        """When a command with ``expected_every`` turned late: ``expected_every +
        expected_grace`` after the start of its last success, or after its cadence
        was first seen when it has none; None while it is not late.

        A run started before that moment and still running keeps it from being
        late (``overrunning`` says when it takes too long).
        """
        every, grace = self.command.expected_every, self.command.expected_grace
        if every is None or grace is None:
            return None
        if self.last_success is not None:
            since = self.last_success.executed_at
        elif self.cadence is not None:
            since = self.cadence.first_seen_at
        else:
            return None
        deadline = since + datetime.timedelta(seconds=every + grace)
        if self.read_at <= deadline:
            return None
        if self.running and self.last_run is not None and self.last_run.executed_at <= deadline:
            return None
        return deadline

    @property
    def overrunning(self) -> bool:
        """True while the newest run has been running longer than ``expected_duration_max``."""
        limit = self.command.expected_duration_max
        return (
            limit is not None
            and self.running
            and self.last_run is not None
            and (self.read_at - self.last_run.executed_at).total_seconds() > limit
        )

    @property
    def alarms(self) -> tuple[CommandState, ...]:
        """What is wrong with a recurring command (``Definition.recurring``): ``LATE``,
        ``FAILED`` (its newest run failed: "failing") and ``OVERRUNNING``, in that
        order; empty when nothing is, or for any other command."""
        if not self.command.recurring:
            return ()
        found = (
            (CommandState.LATE, self.late_since is not None),
            (CommandState.FAILED, self.failed_last),
            (CommandState.OVERRUNNING, self.overrunning),
        )
        return tuple(state for state, wrong in found if wrong)

    def alarm_text(self) -> str:
        """``late since 2026-01-02 03:04; failed`` (empty when ``alarms`` is)."""
        words = []
        for state in self.alarms:
            if state == CommandState.LATE and self.late_since is not None:
                words.append(f"late since {local_time(self.late_since)}")
            elif state == CommandState.OVERRUNNING and self.last_run is not None:
                took = human_duration((self.read_at - self.last_run.executed_at).total_seconds())
                limit = human_duration(self.command.expected_duration_max or 0)
                words.append(f"overrunning: running for {took}, expected at most {limit}")
            elif (run := self.last_run) is not None:
                words.append(f"{run.get_status_display()} at {local_time(run.executed_at)}")
        return "; ".join(words)

    @property
    def shown_state(self) -> CommandState:
        """The ``state``, unless the newest run says more: what the listings show.

        In this order: ``OUTCOME_UNKNOWN``, ``OVERRUNNING``, ``RUNNING``,
        ``GONE``, ``QUEUED``, then ``FAILED`` when the newest run failed and,
        for a run_once command, it has never succeeded (a done command stays
        ``DONE`` even if a forced rerun failed), then ``LATE``.
        """
        if self.outcome_unknown:
            return CommandState.OUTCOME_UNKNOWN
        if self.overrunning:
            return CommandState.OVERRUNNING
        if self.running:
            return CommandState.RUNNING
        if self.gone:
            return CommandState.GONE
        if self.queued:
            return CommandState.QUEUED
        if self.failed_last and self.state != CommandState.DONE:
            return CommandState.FAILED
        if self.late_since is not None:
            return CommandState.LATE
        return self.state

    @property
    def changed(self) -> bool:
        """True when the source file differs from the one of the last successful run.

        A success under a name the command replaces says nothing: the rename
        itself changed the file.
        """
        success = self.last_success
        if success is None or success.command_name != self.command.name:
            return False
        return (
            bool(success.source_hash) and success.source_hash != self.command.current_source_hash()
        )


def command_statuses(
    using: str | None = None,
    scope: str | None = None,
    *,
    brief: bool = False,
    names: Iterable[str] | None = None,
) -> list[CommandStatus]:
    """Every discovered managed command with its history, sorted by app label then name.

    Two statements at most, however many commands and runs: one for the runs
    (``ExecutionRecorder.newest()``), one on ``django_migrations``; when a
    command declares ``expected_every``, one more for the cadences
    (``ExecutionRecorder.cadences()``), and one insert the first time a cadence
    is seen in the scope. Commands whose definition has problems are left out
    (the system checks report them).

    Args:
        using: Alias of the history database; None uses ``MANAGED_COMMANDS["DATABASE"]``
            or the routers.
        scope: The scope whose history is read; None uses the current scope.
        brief: Read only what ``state``, ``shown_state`` and ``changed`` need
            of the runs (the deploy step, the view across tenants); their
            other fields load on access, one query each, and
            ``unapplied_migrations`` is read for the pending commands only.
            Else every field but the long ones (output, traceback...).
        names: Only these commands (the admin's page of one command); None: all.
    """
    using = using or conf.history_database()
    recorder = ExecutionRecorder(using)
    scope = current_scope() if scope is None else scope
    found = discover().commands
    picked = found.values() if names is None else [found[n] for n in names if n in found]
    commands = sorted(picked, key=lambda c: (c.app_label, c.name))
    # A renamed command's history is under the names it replaces too.
    names = [name for command in commands for name in command.history_names]
    columns = BRIEF_COLUMNS if brief else None
    once = [name for command in commands if command.run_once for name in command.history_names]
    newest = recorder.newest(names, scope, columns, done_of=once)
    runs = [
        (
            command,
            _newest(newest.runs, command),
            _newest(newest.successes, command),
            _newest(newest.done, command) if command.run_once else None,
        )
        for command in commands
    ]
    # One query on django_migrations, and none when no command requires a
    # migration (brief: no pending command).
    asking = [c for c, _, _, done_by in runs if not brief or (c.run_once and done_by is None)]
    wanted = sorted({pair for command in asking for pair in command.migration_requires})
    unapplied = set(unapplied_migrations(using, wanted))
    recurring = [command.name for command in commands if command.expected_every is not None]
    cadences = recorder.cadences(recurring, scope) if recurring else {}
    read_at = timezone.now()
    return [
        CommandStatus(
            command,
            run,
            success,
            frozenset(e for e in command.requires if e in unapplied),
            done_by,
            cadences.get(command.name),
            scope,
            read_at,
        )
        for command, run, success, done_by in runs
    ]


def recover_gone(using: str | None = None, scope: str | None = None) -> list[CommandExecution]:
    """Close the queued and running runs of ``scope`` whose holder is gone, as a start would.

    A run enqueued longer than ``QUEUE_TIMEOUT`` ago that no worker started,
    or one whose process died (or whose worker stopped beating past its
    lease), is recorded ``abandoned`` and its claim freed. A run that ended
    but could not record its end (``outcome_unknown``) is left for someone to
    settle. Returns the runs closed, each with ``error_message`` saying why.
    """
    recorder = ExecutionRecorder(using or conf.history_database())
    commands = discover().commands
    closed = []
    for holder in recorder.claim_holders(current_scope() if scope is None else scope):
        if holder.outcome_unknown:
            continue  # it ended: not gone, but for someone to settle
        reason = why_gone(holder, _lease_of(commands.get(holder.command_name)))
        if reason and recorder.abandon(holder, reason):
            holder.error_message = f"Abandoned: {reason}."
            run_ended(holder, status=CommandExecution.Status.ABANDONED)
            closed.append(holder)
    return closed


def run_gone(run: CommandExecution) -> str | None:
    """Why the process of ``run``, recorded running, is gone, as a start judges before it
    takes the run over (``why_gone()``, with the command's lease); None while it may be
    alive, when the run is not recorded running, or when it ended with its outcome
    unknown. Only reads: the next start (or ``show_managed_commands --check``) records
    it abandoned."""
    if run.status != CommandExecution.Status.RUNNING or run.outcome_unknown:
        return None
    return why_gone(run, _lease_of(discover().commands.get(run.command_name)))


def describe_gone(run: CommandExecution, reason: str) -> str:
    """``process 4242 on web-1 is no longer running, last heard from 2 min 05 s ago``."""
    silent = human_duration((timezone.now() - last_heard(run)).total_seconds())
    return f"{reason}, last heard from {silent} ago"


def _lease_of(command: Definition | None) -> float:
    """The lease of ``command``'s runs: its own, else ``LEASE_SECONDS``."""
    return command.lease_seconds if command and command.lease_seconds else conf.lease_seconds()


def _newest(runs: dict[str, CommandExecution], command: Definition) -> CommandExecution | None:
    """The newest of ``runs`` recorded under any of the command's names."""
    if not command.replaced_names:
        return runs.get(command.name)
    found = [runs[name] for name in command.history_names if name in runs]
    return max(found, key=lambda run: (run.executed_at, run.pk), default=None)


def readable_statuses(
    using: str | None = None, scope: str | None = None, *, brief: bool = False
) -> list[CommandStatus]:
    """``command_statuses()`` for a listing: an unreadable history raises ``TrackingUnavailable``.

    Raises:
        TrackingUnavailable: the history table does not exist here, or the
            database cannot be reached; its message says what to do.
    """
    using = using or conf.history_database()
    try:
        return command_statuses(using, scope, brief=brief)
    except DatabaseError as exc:
        raise unavailable(exc, using, reading=True) from exc


@dataclass(frozen=True)
class Orphan:
    """A command name with recorded runs and no code.

    Attributes:
        name: The name its runs were recorded under.
        runs: How many runs it has, in every scope.
        last_run: Its newest run, in any scope.
    """

    name: str
    runs: int
    last_run: CommandExecution


def orphans(recorder: ExecutionRecorder) -> list[Orphan]:
    """The command names with history that no installed command has or replaces.

    Any installed command counts as code, managed or not (one that stopped
    being managed keeps its history), and so does every name in a managed
    command's ``replaces`` (its history is that command's). One aggregate
    over the history, then one read per orphan.
    """
    known = set(get_commands())
    for command in discover().commands.values():
        known.update(command.replaced_names)
    return [
        Orphan(name, runs, recorder.history(name)[0])
        for name, runs in recorder.recorded_names(leaving_out=known).items()
    ]


def alert_late(statuses: Iterable[Any]) -> list[Any]:
    """Log (WARNING) and signal (``command_late``) each of ``statuses`` that turned late,
    once per late spell; return those this process alerted.

    A spell is the lateness after one success (or after none): the next
    success ends it. Already logged, it costs nothing (its cadence row says
    so); else one conditional update, which only one process wins.
    """
    alerted = []
    recorder = history_recorder()
    for status in statuses:
        since = status.late_since
        if since is None or status.cadence is None:
            continue
        after = status.last_success.pk if status.last_success else 0
        if status.cadence.late_alerted_after == after:
            continue
        try:
            won = recorder.claim_late_alert(status.command.name, status.scope, after)
        except DatabaseError:
            logger.exception("Could not record the late spell of '%s'", status.command.name)
            continue
        if not won:
            continue
        status.cadence.late_alerted_after = after
        where = f" [{status.scope}]" if status.scope else ""
        last = status.last_success
        alerts.warning(
            "'%s'%s is late: %s; %s.",
            status.command.name,
            where,
            status.alarm_text(),
            f"last success #{last.pk}" + (f" ({admin_url(last)})" if admin_url(last) else "")
            if last
            else "no success recorded",
            extra={"command_name": status.command.name, "scope": status.scope},
        )
        command_late.send(
            sender=status.command.name,
            command=status.command,
            scope=status.scope,
            late_since=since,
            last_success=last,
        )
        alerted.append(status)
    return alerted
