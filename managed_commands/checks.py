"""System checks (``manage.py check``), with ids ``managed_commands.E0xx``."""

from __future__ import annotations

import difflib
import importlib.util
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Tags, Warning
from django.core.checks import register as register_check
from django.utils.module_loading import import_string

from managed_commands import conf, definition


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001: ``MANAGED_COMMANDS`` is a dict of known keys with values of the right type."""
    from django.conf import settings

    user = getattr(settings, "MANAGED_COMMANDS", {})
    if not isinstance(user, dict):
        return [
            Error(
                f"MANAGED_COMMANDS must be a dict, not {type(user).__name__}.",
                hint="Set MANAGED_COMMANDS = {} or remove it to use the defaults.",
                id="managed_commands.E001",
            )
        ]
    errors: list[CheckMessage] = []
    for key in sorted(set(user) - set(conf.DEFAULTS)):
        errors.append(
            Error(
                f"MANAGED_COMMANDS has an unknown key {key!r}.",
                hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.",
                id="managed_commands.E001",
            )
        )
    numbers = ("OUTPUT_LIMIT", "WAIT_TIMEOUT", "LEASE_SECONDS")
    for key in numbers:
        value = user.get(key, conf.DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(
                Error(
                    f"MANAGED_COMMANDS[{key!r}] must be a number >= 0, not {value!r}.",
                    hint=f"The default is {conf.DEFAULTS[key]!r}.",
                    id="managed_commands.E001",
                )
            )
    sensitive = user.get("SENSITIVE_OPTIONS", ())
    if isinstance(sensitive, str) or not all(isinstance(s, str) for s in sensitive):
        errors.append(
            Error(
                "MANAGED_COMMANDS['SENSITIVE_OPTIONS'] must be a list of option names.",
                hint="For example ['dsn', 'webhook_url'].",
                id="managed_commands.E001",
            )
        )
    errors.extend(_check_database(user.get("DATABASE")))
    errors.extend(_check_scope(user.get("SCOPE")))
    return errors


def check_commands(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E002-E006 and W001: every managed command's definition and ``requires``.

    Imports the installed apps' command modules (cached per process), runs none.
    """
    from managed_commands.loader import discover, requirement_graph

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
    valid = []
    for name, command in sorted(found.commands.items()):
        problems = definition.problems(command.command_class)
        messages += [
            Error(
                problem,
                hint="requires is a list of command names and 'app_label.migration' entries; "
                "run_once and allow_concurrent are True or False.",
                obj=name,
                id="managed_commands.E002",
            )
            for problem in problems
        ]
        if not problems:
            valid.append(command)
    graph = requirement_graph(valid)
    for name, requirement in graph.missing():
        messages.append(_missing_command(name, requirement, found.broken, list(found.commands)))
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
    for command in valid:
        for app_label, migration in command.spec.migration_requires:
            reason = _missing_migration(app_label, migration)
            if reason:
                messages.append(
                    Error(
                        f"'{command.name}' requires the migration '{app_label}.{migration}', "
                        f"but {reason}.",
                        hint="Name an existing migration as 'app_label.migration_name', "
                        "for example 'shop.0007_add_price'.",
                        obj=command.name,
                        id="managed_commands.E006",
                    )
                )
    return messages


def _missing_command(
    name: str, requirement: str, broken: dict[str, str], managed: list[str]
) -> CheckMessage:
    from django.core.management import get_commands

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
    from django.db.migrations.loader import MigrationLoader

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


def _check_database(alias: Any) -> list[CheckMessage]:
    from django.conf import settings

    if alias is None or (isinstance(alias, str) and alias in settings.DATABASES):
        return []
    return [
        Error(
            f"MANAGED_COMMANDS['DATABASE'] must be None or an alias of DATABASES, not {alias!r}.",
            hint=f"Known aliases: {', '.join(sorted(settings.DATABASES))}.",
            id="managed_commands.E001",
        )
    ]


def _check_scope(scope: Any) -> list[CheckMessage]:
    if scope is None or callable(scope):
        return []
    problem = f"is not a callable or a dotted path, but {scope!r}"
    if isinstance(scope, str):
        try:
            found = import_string(scope)
        except ImportError as exc:
            problem = f"cannot be imported ({exc})"
        else:
            if callable(found):
                return []
            problem = f"names {found!r}, which is not callable"
    return [
        Error(
            f"MANAGED_COMMANDS['SCOPE'] {problem}.",
            hint="Give the dotted path of a function taking the connection and "
            "returning the scope, e.g. 'mysite.scopes.current_site'.",
            id="managed_commands.E001",
        )
    ]


def register() -> None:
    register_check(Tags.compatibility)(check_settings)
    register_check(Tags.compatibility)(check_commands)
