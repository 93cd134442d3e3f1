"""Where each managed command stands: pending, done or repeatable; last run; source changed.

Shared by ``show_managed_commands``, the ``migrate`` notice, the deploy step
and the admin overview, so they all agree on what "pending" means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from managed_commands import conf
from managed_commands.definition import unapplied_migrations
from managed_commands.loader import ManagedCommand, discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.scopes import current_scope

PENDING = "pending"
DONE = "done"
REPEATABLE = "repeatable"
RUNNING = "running"
FAILED = "failed"


@dataclass(frozen=True)
class CommandStatus:
    """One managed command and its history in one scope."""

    command: ManagedCommand
    last_run: CommandExecution | None
    last_success: CommandExecution | None
    #: The ``"app_label.migration"`` entries of ``requires`` not applied yet.
    unapplied_migrations: frozenset[str] = field(default=frozenset())

    @property
    def state(self) -> str:
        """``pending`` or ``done`` for a run_once command, else ``repeatable``."""
        if not self.command.run_once:
            return REPEATABLE
        return DONE if self.last_success is not None else PENDING

    @property
    def running(self) -> bool:
        return self.last_run is not None and self.last_run.status == CommandExecution.Status.RUNNING

    @property
    def failed_last(self) -> bool:
        return self.last_run is not None and not self.last_run.success and not self.running

    @property
    def condition(self) -> str:
        """One word: ``running``, ``failed``, or ``state`` (pending, done, repeatable).

        ``failed`` means the newest run failed and, for a run_once command,
        that it has never succeeded: a done command stays ``done`` even if a
        forced rerun failed.
        """
        if self.running:
            return RUNNING
        if self.failed_last and self.state != DONE:
            return FAILED
        return self.state

    @property
    def changed(self) -> bool:
        """True when the source file differs from the one of the last successful run."""
        recorded = self.last_success.source_hash if self.last_success else ""
        return bool(recorded) and recorded != self.command.current_source_hash()


def command_statuses(using: str | None = None, scope: str | None = None) -> list[CommandStatus]:
    """Every discovered managed command with its history, sorted by app label then name."""
    using = using or conf.history_database()
    recorder = ExecutionRecorder(using)
    scope = current_scope() if scope is None else scope
    commands = sorted(discover().commands.values(), key=lambda c: (c.app_label, c.name))
    names = [command.name for command in commands]
    last_runs = recorder.latest_runs(names, scope)
    last_successes = recorder.latest_runs(names, scope, successful=True)
    unapplied = _unapplied_migrations(commands, using)
    return [
        CommandStatus(
            command,
            last_runs.get(command.name),
            last_successes.get(command.name),
            frozenset(_migration_entries(command) & unapplied),
        )
        for command in commands
    ]


def _migration_entries(command: ManagedCommand) -> set[str]:
    return {entry for entry in command.requires if isinstance(entry, str) and "." in entry}


def _unapplied_migrations(commands: list[ManagedCommand], using: str) -> set[str]:
    # One query on django_migrations, and none when no command requires a migration.
    wanted = set().union(*map(_migration_entries, commands))
    pairs = [(app_label, name) for app_label, _, name in (e.partition(".") for e in sorted(wanted))]
    return set(unapplied_migrations(using, pairs))
