"""Settings of managed_commands, read from ``settings.MANAGED_COMMANDS`` at call time.

Reading at call time (never at import) keeps ``override_settings`` working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import router
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Characters of stdout (and of stderr) stored per run: the first and last
    # half are kept, with a marker at the cut.
    "OUTPUT_LIMIT": 100_000,
    # Option names stored redacted, on top of the built-in secret-looking names.
    "SENSITIVE_OPTIONS": (),
    # False, or a logging level (True means INFO): log records emitted while a
    # command runs are stored with its stderr.
    "CAPTURE_LOGS": False,
    # Seconds a start waits for a running holder of the same command.
    "WAIT_TIMEOUT": 300,
    # Seconds without a heartbeat after which a holder on another host is
    # presumed gone. Holders on this host are checked by process instead.
    "LEASE_SECONDS": 60,
    # Database alias that holds the history; None asks the database routers.
    "DATABASE": None,
    # Dotted path to a callable ``(connection) -> str`` returning the scope of
    # a run (a tenant, a site), given the connection the command runs on;
    # None detects django-tenants or uses "".
    "SCOPE": None,
    # Print the pending run_once commands after ``migrate``.
    "MIGRATE_NOTICE": True,
}


def get(name: str) -> Any:
    """Return one setting, falling back to its default."""
    user = getattr(settings, "MANAGED_COMMANDS", None) or {}
    return user.get(name, DEFAULTS[name])


def history_database() -> str:
    """Return the alias of the database that holds ``CommandExecution`` rows."""
    alias = get("DATABASE")
    if alias:
        return str(alias)
    from managed_commands.models import CommandExecution

    return router.db_for_write(CommandExecution)


def scope_function() -> Callable[[Any], str] | None:
    """Return the configured scope callable, if any."""
    path = get("SCOPE")
    if not path:
        return None
    if callable(path):
        return path  # type: ignore[no-any-return]
    return import_string(path)  # type: ignore[no-any-return]


def capture_logs_level() -> int | None:
    """Return the logging level to capture at, or None when logs are not captured."""
    value = get("CAPTURE_LOGS")
    if value is False or value is None:
        return None
    if value is True:
        return 20  # logging.INFO
    if isinstance(value, int):
        return value
    import logging

    level = logging.getLevelName(str(value).upper())
    return level if isinstance(level, int) else 20
