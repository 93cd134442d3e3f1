"""``RequireCommand``: a migration operation that stops ``migrate`` until a command has run.

A migration that adds a constraint often needs a data backfill first: the
backfill is a pre_migrate managed command, and the migration says so with
``RequireCommand("backfill_slugs")``. Applying the migration then checks the
command's history instead of trusting the deploy order.

List ``("managed_commands", "0001_initial")`` (or the latest
migration of managed_commands) in the migration's dependencies: on a fresh
database the history table must exist before the check can read it.
``RequireCommand`` adds no dependency itself, so that its migration states
the one it needs.
"""

from __future__ import annotations

from django.db import connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from managed_commands.conf import command_database, current_scope
from managed_commands.exceptions import RequirementNotMet
from managed_commands.loader import discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import history_recorder
from managed_commands.requirements import newest_successes

__all__ = ["RequireCommand"]


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
