"""Plan and run the pending run_once commands: the deploy step behind ``run_pending_commands``.

Combines the loader (what exists), the graph (in which order), the status
(what is pending) and the recorder (faked runs). Each command is run through
``call_command()``, so it is a normal tracked run with its own lock: a second
deployer running the same plan waits for the first and then finds it done.

``RequireCommand`` orders the other way round, as a migration operation: applied
forwards, it stops ``migrate`` unless the command is done, so a migration that needs
the data a command writes (a constraint on a backfilled column) cannot run before it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from io import TextIOBase
from typing import Any, cast

from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.db import DatabaseError, connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from managed_commands import conf
from managed_commands.base import ManagedBaseCommand
from managed_commands.conf import command_database, current_scope
from managed_commands.definition import Definition
from managed_commands.exceptions import OutcomeUnknown, PendingCommandFailed, RequirementNotMet
from managed_commands.loader import EVERYTHING, Selection, discover
from managed_commands.models import CommandExecution
from managed_commands.origin import hostname, origin, started_by
from managed_commands.recorder import ExecutionRecorder, history_recorder, unavailable
from managed_commands.requirements import newest_successes
from managed_commands.status import CommandState, command_statuses, recover_gone

#: ``progress_callback(event, command, execution=None, error=None)`` is called
#: with the ``Definition`` of each command of the plan and the event
#: ``"start"``, then ``"success"``, ``"skipped"`` (done meanwhile by another
#: process) or ``"failure"``; ``"faked"`` for each faked command.
ProgressCallback = Callable[..., None]


class CommandExecutor:
    """Plans and runs the pending run_once commands of one database and scope.

    Args:
        using: Alias of the history database; None uses ``MANAGED_COMMANDS["DATABASE"]``
            or the routers.

    Attributes:
        statuses: ``command_statuses(brief=True)`` of the scope by command name, as read
            when the executor was made.
        graph: The ``requires`` graph of those commands.

    Raises:
        InvalidDefinition: some managed command's definition has problems.
        TrackingUnavailable: the history cannot be read (no table yet...).
    """

    def __init__(self, using: str | None = None) -> None:
        discovery = discover()
        discovery.ensure_valid()
        self.using = using or conf.history_database()
        self.scope = current_scope()
        try:
            # Brief: run across 1,000s of tenants, it needs only what is pending.
            statuses = command_statuses(self.using, self.scope, brief=True)
        except DatabaseError as exc:
            # Before the first migrate (a pre_migrate step on a new database):
            # say what to run rather than show a traceback.
            raise unavailable(exc, self.using) from exc
        self.statuses = {s.command.name: s for s in statuses}
        # The statuses cover every discovered command: the graph is theirs.
        self.graph = discovery.graph

    def plan(
        self, targets: Iterable[str] | None = None, selection: Selection = EVERYTHING
    ) -> list[Definition]:
        """The pending run_once commands among ``targets`` (default: all), in run order.

        Only those ``selection`` picks (a phase, tags; default: every one).

        Each command comes after every command it requires; ties go by
        INSTALLED_APPS order, then name. Raises ``CommandError`` for a target
        that is not a managed run_once command, ``UnknownRequirement`` or
        ``CircularRequirement`` when ``requires`` is inconsistent.
        """
        self.graph.validate()
        names = list(self.statuses) if targets is None else self._checked(targets)
        pending = [
            name
            for name in names
            if self.statuses[name].state == CommandState.PENDING
            and selection.picks(self.statuses[name].command)
        ]
        return [self.statuses[name].command for name in self.graph.plan(pending)]

    def run(
        self,
        plan: Sequence[Definition],
        progress_callback: ProgressCallback | None = None,
        *,
        verbosity: int = 1,
        stdout: TextIOBase | None = None,
        stderr: TextIOBase | None = None,
    ) -> None:
        """Run each command of ``plan`` in turn as a tracked run; stop at the first failure.

        Raises:
            PendingCommandFailed: naming the failed command and those left pending.
        """
        report = progress_callback or _ignore
        streams = {key: value for key, value in (("stdout", stdout), ("stderr", stderr)) if value}
        for index, command in enumerate(plan):
            report("start", command)
            left = ", ".join(c.name for c in plan[index:])
            try:
                execution = _call(command.name, verbosity=verbosity, **streams)
            except OutcomeUnknown as exc:
                # Not a failure: it ran, so it must not run again before someone checks.
                raise PendingCommandFailed(
                    f"{exc} run_pending_commands stopped. Still pending: {left}.",
                    command.name,
                    exc.returncode,
                ) from exc
            except Exception as exc:
                report("failure", command, error=exc)
                raise PendingCommandFailed(
                    f"'{command.name}' failed, so run_pending_commands stopped. "
                    f"Still pending: {left}. Fix the failure, then run it again.",
                    command.name,
                ) from exc
            report("skipped" if execution is None else "success", command, execution=execution)

    def fake(
        self, plan: Sequence[Definition], progress_callback: ProgressCallback | None = None
    ) -> None:
        """Record each command of ``plan`` as done without running it (status ``faked``).

        Runs whose process is gone are closed first, as a start would, so that
        the faked run holds the command's ``once_key``.
        """
        report = progress_callback or _ignore
        recorder = ExecutionRecorder(self.using)
        recover_gone(self.using, self.scope)
        with started_by("run_pending_commands"):
            started = origin()
        for command in plan:
            execution = recorder.record_faked(
                command.name,
                self.scope,
                app_label=command.app_label,
                source_hash=command.current_source_hash(),
                hostname=hostname(),
                pid=os.getpid(),
                origin=started,
            )
            report("faked", command, execution=execution)

    def _checked(self, targets: Iterable[str]) -> list[str]:
        names = list(dict.fromkeys(targets))
        for name in names:
            if name not in self.statuses:
                known = ", ".join(sorted(self.statuses)) or "none"
                raise CommandError(f"'{name}' is not a managed command. Managed commands: {known}.")
            if not self.statuses[name].command.run_once:
                raise CommandError(
                    f"'{name}' is not a run_once command, so it is never pending or done."
                )
        return names


def _call(name: str, **options: Any) -> CommandExecution | None:
    """Run command ``name``; return its row, or None when it found itself already done."""
    app_name = get_commands()[name]
    command = load_command_class(app_name, name) if isinstance(app_name, str) else app_name
    with started_by("run_pending_commands"):
        call_command(command, **options)
    return cast(ManagedBaseCommand, command).recorded_run


def _ignore(*args: Any, **kwargs: Any) -> None:
    pass


class RequireCommand(Operation):
    """Applying it forwards fails unless managed command ``name`` has succeeded (or was faked).

    The check reads the history of the current scope (under django-tenants,
    the tenant being migrated) and runs only when migrating the database
    commands run on, where the command's data lives. Backwards it does
    nothing, and it changes neither the schema nor the migration state;
    ``migrate --fake`` skips it like any operation.

    Args:
        name: The managed command, as typed after ``manage.py``.
    """

    reduces_to_sql = False
    reversible = True

    def __init__(self, name: str) -> None:
        self.name = name

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.alias == command_database():
            ensure_ran(self.name, app_label)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        pass

    def describe(self) -> str:
        return f"Require that the managed command '{self.name}' has run"

    @property
    def migration_name_fragment(self) -> str:
        return f"require_{self.name}"


def ensure_ran(name: str, app_label: str) -> None:
    """Raise ``RequirementNotMet`` unless ``name`` succeeded in the current scope.

    Args:
        name: The required managed command.
        app_label: The app whose migration requires it, for the message.
    """
    where = f"A migration of '{app_label}' requires the managed command '{name}'"
    if name not in discover().commands:
        raise RequirementNotMet(
            f"{where}, but no installed app has a managed command named '{name}'. "
            f"Correct the name in RequireCommand()."
        )
    recorder = history_recorder()
    table = CommandExecution._meta.db_table
    if table not in connections[recorder.using].introspection.table_names():
        raise RequirementNotMet(
            f"{where}, but the history table '{table}' does not exist yet on database "
            f"'{recorder.using}', so no run of it can be found. Add "
            f"('managed_commands', '0001_initial') to the migration's "
            f"dependencies, so that managed_commands is migrated first."
        )
    scope = current_scope()
    history = {name: discover().commands[name].history_names}
    if name not in newest_successes(recorder, history, scope):
        in_scope = f" in scope '{scope}'" if scope else ""
        raise RequirementNotMet(
            f"{where}, which has not run successfully{in_scope} yet, so migrate stopped. Run it "
            f"first with 'python manage.py {name}' (or every pending pre_migrate command with "
            f"'python manage.py run_pending_commands --phase pre_migrate'), then migrate again."
        )
