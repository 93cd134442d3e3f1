"""Whether a command's requirements are met: the required commands' successes in this
scope (under the names they replace too) and the required migrations, applied on the
database the command runs on.

The one check the run (before it claims) and the status view (for every pending
command) share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from django.core.management import get_commands
from django.db import DatabaseError, connections, transaction
from django.db.migrations.recorder import MigrationRecorder

from managed_commands.conf import command_database
from managed_commands.definition import (
    Definition,
    command_class_of,
    replaced_names,
    replaces_problems,
)
from managed_commands.exceptions import RequirementNotMet

if TYPE_CHECKING:
    from managed_commands.recorder import ExecutionRecorder


def unapplied_migrations(using: str, migrations: Iterable[tuple[str, str]]) -> list[str]:
    """The ``"app_label.migration"`` names of ``migrations`` not applied on ``using``.

    No query when ``migrations`` is empty.
    """
    wanted = list(migrations)
    if not wanted:
        return []
    applied = _applied_migrations(using, {app for app, _ in wanted})
    return [f"{app}.{name}" for app, name in wanted if (app, name) not in applied]


def _applied_migrations(using: str, app_labels: set[str]) -> set[tuple[str, str]]:
    """The ``(app, name)`` rows of ``django_migrations`` for ``app_labels``: one read.

    Not ``MigrationRecorder.applied_migrations()``, which first asks the
    catalogue whether the table exists (five statements per schema under
    django-tenants) and then reads every app's rows. The catalogue is asked
    only when the read fails: before the first ``migrate`` nothing is applied.
    """
    connection = connections[using]
    recorder = MigrationRecorder(connection)
    rows = recorder.migration_qs.filter(app__in=app_labels).values_list("app", "name")
    try:
        # A failed read must not abort the caller's transaction.
        guard = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
        with guard:
            return set(rows)
    except DatabaseError:
        if recorder.has_table():
            raise
        return set()


def names_replaced_by(name: str) -> tuple[str, ...]:
    """The names the installed command ``name`` replaces, read from its class.

    () when it is not installed, cannot be imported or its ``replaces`` is
    invalid (the system checks report those). For the run path, which
    validates only the running command's own definition.
    """
    app_name = get_commands().get(name)
    try:
        cls = command_class_of(app_name, name) if isinstance(app_name, str) else None
        if cls is None or replaces_problems("", name, getattr(cls, "replaces", ())):
            return ()
    except Exception:  # noqa: BLE001 - a broken module is the system checks' to report
        return ()
    return replaced_names(cls.replaces)


def newest_successes(
    recorder: ExecutionRecorder, names: Mapping[str, Iterable[str]], scope: str
) -> dict[str, Any]:
    """Map each command of ``names`` to the start of its newest success in ``scope``.

    Args:
        names: Each command's name -> every name its runs were recorded
            under (its own and those it replaces), so a renamed command's
            history counts as its own.
    """
    found = recorder.last_successes([old for history in names.values() for old in history], scope)
    newest = {}
    for name, history in names.items():
        starts = [found[old] for old in history if old in found]
        if starts:
            newest[name] = max(starts)
    return newest


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
