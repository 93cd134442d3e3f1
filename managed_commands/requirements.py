"""Check a run's ``requires``: other commands that succeeded, migrations that are applied."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from managed_commands.definition import Definition
from managed_commands.exceptions import RequirementNotMet
from managed_commands.scopes import command_database


def unapplied_migrations(using: str, migrations: Iterable[tuple[str, str]]) -> list[str]:
    wanted = list(migrations)
    if not wanted:
        return []
    applied = MigrationRecorder(connections[using]).applied_migrations()
    return [f"{app}.{name}" for app, name in wanted if (app, name) not in applied]


def ensure_met(definition: Definition, successes: Mapping[str, Any]) -> None:
    """Raise ``RequirementNotMet`` naming every requirement that is not met.

    Required commands are looked up in ``successes`` (this scope's history);
    required migrations must be applied on the database the command runs on,
    where its data lives, whichever database holds the history. Under
    django-tenants that is the selected tenant's schema.
    """
    using = command_database()
    commands = [name for name in definition.command_requires if name not in successes]
    migrations = unapplied_migrations(using, definition.migration_requires)
    if not commands and not migrations:
        return
    parts = []
    if commands:
        listed = ", ".join(f"'{name}'" for name in commands)
        parts.append(
            f"it requires {listed}, which {'has' if len(commands) == 1 else 'have'} "
            f"not run successfully yet. Run {'it' if len(commands) == 1 else 'them'} first "
            f"(python manage.py run_pending_commands runs everything pending in order)"
        )
    if migrations:
        listed = ", ".join(f"'{name}'" for name in migrations)
        parts.append(
            f"it requires the migration{'s' if len(migrations) > 1 else ''} {listed}, "
            f"not applied on database '{using}'. Run 'python manage.py migrate' first"
        )
    raise RequirementNotMet(f"Cannot run '{definition.name}': " + "; ".join(parts) + ".")
