"""System checks (``manage.py check``), with ids ``managed_commands.E0xx``."""

from __future__ import annotations

import difflib
import importlib.util
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.checks import register as register_check
from django.core.management import get_commands
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from managed_commands import conf
from managed_commands.conf import command_database
from managed_commands.definition import POST_MIGRATE, PRE_MIGRATE, Definition
from managed_commands.loader import discover


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001, E010-E019, E022: ``MANAGED_COMMANDS`` is a dict of known keys with valid values."""
    configured = getattr(settings, "MANAGED_COMMANDS", {})
    if not isinstance(configured, dict):
        return [
            Error(
                f"MANAGED_COMMANDS must be a dict, not {type(configured).__name__}.",
                hint="Set MANAGED_COMMANDS = {} or remove it to use the defaults.",
                id="managed_commands.E001",
            )
        ]
    unknown = sorted(set(configured) - set(conf.BY_NAME), key=str)
    errors: list[CheckMessage] = [_unknown_key(key) for key in unknown]
    for setting in conf.SETTINGS:
        problem = setting.problem(configured.get(setting.name, setting.default))
        if problem is not None:
            errors.append(Error(setting.message(problem), hint=setting.hint, id=setting.check_id))
    return errors


def _unknown_key(key: Any) -> CheckMessage:
    close = difflib.get_close_matches(str(key), list(conf.BY_NAME), n=1)
    return Error(
        f"MANAGED_COMMANDS has an unknown key {key!r}.",
        hint=f"Did you mean {close[0]!r}?"
        if close
        else f"Known keys: {', '.join(sorted(conf.BY_NAME))}.",
        id="managed_commands.E010",
    )


def check_commands(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E002-E009, E020-E023, E026-E031, W001 and W002: every managed command's
    definition, ``requires`` and ``replaces``.

    Imports the installed apps' command modules (cached per process), runs none.
    """
    found = discover()
    messages: list[CheckMessage] = [
        Warning(
            f"The command module of '{name}' cannot be imported ({error}), so it is not checked.",
            hint=f"Fix the error raised by importing it; 'python manage.py {name}' shows it.",
            obj=name,
            id="managed_commands.W001",
        )
        for name, error in sorted(found.broken.items())
    ]
    messages += [
        Error(problem.message, hint=problem.hint, obj=name, id=problem.id)
        for name, problems in sorted(found.invalid.items())
        for problem in problems
    ]
    graph = found.graph
    managed = sorted([*found.commands, *found.invalid])
    renamed = _renames(found.commands)
    for name, requirement in graph.missing():
        # A requirement whose own definition is invalid is reported as such, above.
        if requirement in renamed:
            messages.append(_renamed_requirement(name, requirement, renamed[requirement]))
        elif requirement not in found.invalid:
            messages.append(_missing_command(name, requirement, found.broken, managed))
    for cycle in graph.cycles():
        messages.append(
            Error(
                f"These commands require each other in a cycle (each requires the next): "
                f"{' -> '.join(cycle)}.",
                hint="Remove one requirement of the cycle: no order could run them all.",
                obj=cycle[0],
                id="managed_commands.E005",
            )
        )
    messages += _phase_mismatches(found.commands)
    messages += _replaced_names_in_use(found.commands)
    for name, command in sorted(found.commands.items()):
        for app_label, migration in command.migration_requires:
            reason = _missing_migration(app_label, migration)
            if reason:
                messages.append(
                    Error(
                        f"'{name}' requires the migration '{app_label}.{migration}', but {reason}.",
                        hint="Name an existing migration as 'app_label.migration_name', "
                        "for example 'shop.0007_add_price'.",
                        obj=name,
                        id="managed_commands.E006",
                    )
                )
    messages += _timeouts_ignored(found.commands)
    return messages


def _timeouts_ignored(commands: dict[str, Definition]) -> list[CheckMessage]:
    """W002: statement_timeout and lock_timeout do nothing on SQLite."""
    timed = sorted((name, command) for name, command in commands.items() if command.timeouts)
    using = command_database()
    if not timed or connections[using].vendor != "sqlite":
        return []
    return [
        Warning(
            f"'{name}' sets {' and '.join(_timeouts_of(command))}, but the database its "
            f"commands run on ('{using}') is SQLite, which has no such timeouts: "
            f"they are ignored there.",
            hint="Remove them, or run the command on PostgreSQL, MariaDB or MySQL. "
            "time_limit works on every database.",
            obj=name,
            id="managed_commands.W002",
        )
        for name, command in timed
    ]


def _timeouts_of(command: Definition) -> list[str]:
    return [
        name for name in ("statement_timeout", "lock_timeout") if getattr(command, name) is not None
    ]


def _phase_mismatches(commands: dict[str, Definition]) -> list[CheckMessage]:
    """E028: a pre_migrate command requiring a post_migrate one.

    ``run_pending_commands --phase pre_migrate`` would leave the requirement
    pending, so the command could not run before ``migrate``.
    """
    return [
        Error(
            f"'{name}' is a pre_migrate command but requires '{requirement}', a "
            f"post_migrate command: it would still be pending when '{name}' runs before migrate.",
            hint=f"Make '{requirement}' pre_migrate too (phase = 'pre_migrate'), or '{name}' "
            f"post_migrate.",
            obj=name,
            id="managed_commands.E028",
        )
        for name, command in sorted(commands.items())
        if command.phase == PRE_MIGRATE
        for requirement in command.command_requires
        if requirement in commands and commands[requirement].phase == POST_MIGRATE
    ]


def _renames(commands: dict[str, Definition]) -> dict[str, list[str]]:
    """Map each replaced name to the commands that list it in ``replaces``."""
    found: dict[str, list[str]] = {}
    for name, command in sorted(commands.items()):
        for old in command.replaced_names:
            found.setdefault(old, []).append(name)
    return found


def _replaced_names_in_use(commands: dict[str, Definition]) -> list[CheckMessage]:
    """E030: a replaced name is still a command; E031: two commands replace one name.

    Either way one history would count for two commands.
    """
    installed = get_commands()
    messages: list[CheckMessage] = []
    for old, names in sorted(_renames(commands).items()):
        if old in installed:
            messages += [
                Error(
                    f"'{name}' replaces '{old}', but '{old}' is still a command "
                    f"(of '{installed[old]}'): its runs would count for both.",
                    hint=f"Delete the old command '{old}' once it is renamed to '{name}', "
                    f"or remove '{old}' from replaces.",
                    obj=name,
                    id="managed_commands.E030",
                )
                for name in names
            ]
        if len(names) > 1:
            messages.append(
                Error(
                    f"{' and '.join(repr(n) for n in names)} all replace '{old}': its runs "
                    f"would count for each of them.",
                    hint=f"Keep '{old}' in the replaces of the one command it was renamed to.",
                    obj=names[0],
                    id="managed_commands.E031",
                )
            )
    return messages


def _renamed_requirement(name: str, requirement: str, renamed_to: list[str]) -> CheckMessage:
    return Error(
        f"'{name}' requires '{requirement}', which was renamed to '{renamed_to[0]}' "
        f"(its replaces lists '{requirement}').",
        hint=f"Require '{renamed_to[0]}' instead: its history includes the runs of "
        f"'{requirement}'.",
        obj=name,
        id="managed_commands.E003",
    )


def _missing_command(
    name: str, requirement: str, broken: dict[str, str], managed: list[str]
) -> CheckMessage:
    if requirement in get_commands() and requirement not in broken:
        return Error(
            f"'{name}' requires '{requirement}', which is not a managed command: "
            f"its runs are not recorded, so this requirement could never be met.",
            hint=f"Make '{requirement}' subclass ManagedBaseCommand, or remove it from "
            f"requires (a schema migration is required as 'app_label.migration_name').",
            obj=name,
            id="managed_commands.E004",
        )
    close = difflib.get_close_matches(requirement, managed, n=1)
    return Error(
        f"'{name}' requires '{requirement}', which is not a command of any installed app.",
        hint=f"Did you mean '{close[0]}'?"
        if close
        else "Name a managed command as typed after manage.py, or a migration as "
        "'app_label.migration_name'.",
        obj=name,
        id="managed_commands.E003",
    )


def _missing_migration(app_label: str, migration: str) -> str:
    """Why ``app_label.migration`` names no migration file ("" when it exists)."""
    try:
        apps.get_app_config(app_label)
    except LookupError:
        return f"no installed app has the label '{app_label}'"
    module_name, _ = MigrationLoader.migrations_module(app_label)
    try:
        exists = module_name is not None and bool(
            importlib.util.find_spec(f"{module_name}.{migration}")
        )
    except ImportError:
        exists = False
    return "" if exists else f"app '{app_label}' has no migration named '{migration}'"


def register() -> None:
    # Our own tag, so that "manage.py check --tag managed_commands" runs just these.
    register_check("managed_commands")(check_settings)
    register_check("managed_commands")(check_commands)
