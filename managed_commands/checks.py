"""System checks (``manage.py check``), with ids ``managed_commands.E0xx``."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags
from django.core.checks import register as register_check
from django.utils.module_loading import import_string

from managed_commands import conf


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
