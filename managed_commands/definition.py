"""Read and validate what a ManagedBaseCommand subclass declares.

The same validation serves the run (a clear error instead of a traceback)
and the system checks (an error at ``manage.py check`` time).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from managed_commands.exceptions import InvalidDefinition, RequirementNotMet
from managed_commands.scopes import command_database


@dataclass(frozen=True)
class Definition:
    """What a managed command declares, once validated."""

    name: str
    app_label: str
    run_once: bool
    requires: tuple[str, ...]
    allow_concurrent: bool
    sensitive_options: tuple[str, ...]

    @property
    def command_requires(self) -> tuple[str, ...]:
        """Entries naming other commands."""
        return tuple(r for r in self.requires if "." not in r)

    @property
    def migration_requires(self) -> tuple[tuple[str, str], ...]:
        """Entries of the form ``app_label.migration_name``, split."""
        return tuple(
            (app_label, migration)
            for app_label, _, migration in (r.partition(".") for r in self.requires if "." in r)
        )


def source_file(module_name: str) -> str:
    """Path of the file of a loaded module ("" when unknown)."""
    return str(getattr(sys.modules.get(module_name), "__file__", "") or "")


@cache
def source_hash(module_name: str) -> str:
    """SHA-256 of a command module's file as this process loaded it ("" when unreadable)."""
    return hash_file(source_file(module_name))


def hash_file(path: str) -> str:
    """SHA-256 of a file's bytes ("" when it cannot be read)."""
    try:
        with open(path, "rb") as source:
            return hashlib.sha256(source.read()).hexdigest()
    except OSError:
        return ""


def command_name(command_class: type) -> str:
    """The name typed after manage.py: Django names a command after its module."""
    return command_class.__module__.rpartition(".")[2]


def app_label(command_class: type) -> str:
    config = apps.get_containing_app_config(command_class.__module__)
    return config.label if config else ""


def _is_names(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset) and all(
        isinstance(item, str) and item for item in value
    )


def problems(command_class: type) -> list[str]:
    """Describe every attribute of ``command_class`` that has the wrong type or value."""
    where = f"{command_class.__module__}.{command_class.__name__}"
    name = command_name(command_class)
    found = []
    for attribute in ("run_once", "allow_concurrent"):
        value = getattr(command_class, attribute)
        if not isinstance(value, bool):
            found.append(f"{where}.{attribute} must be True or False, not {value!r}.")
    requires = command_class.requires  # type: ignore[attr-defined]
    if isinstance(requires, str):
        found.append(
            f"{where}.requires must be a list of command names, "
            f"for example requires = [{requires!r}], not the string {requires!r}."
        )
    elif not _is_names(requires):
        found.append(
            f"{where}.requires must be a list of command names (strings), not {requires!r}."
        )
    elif name in requires:
        found.append(f"{where}.requires names the command itself ({name!r}).")
    if not _is_names(command_class.sensitive_options) and command_class.sensitive_options:  # type: ignore[attr-defined]
        found.append(
            f"{where}.sensitive_options must be a list of option names, "
            f"not {command_class.sensitive_options!r}."  # type: ignore[attr-defined]
        )
    return found


def read(command_class: type) -> Definition:
    """Return the validated definition; raises ``InvalidDefinition`` listing every problem."""
    found = problems(command_class)
    if found:
        raise InvalidDefinition(" ".join(found))
    cls: Any = command_class
    return Definition(
        name=command_name(cls),
        app_label=app_label(cls),
        run_once=cls.run_once,
        requires=tuple(cls.requires),
        allow_concurrent=cls.allow_concurrent,
        sensitive_options=tuple(cls.sensitive_options),
    )


# -- Whether a run's ``requires`` are met: other commands that succeeded,
# migrations that are applied.


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
