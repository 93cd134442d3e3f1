"""Settings of managed_commands, and the scope and tasks API they select.

One table of ``MANAGED_COMMANDS`` keys, one accessor each. ``settings.MANAGED_COMMANDS``
is read at call time (never at import), so ``override_settings`` works. A bad value
is reported by the system check of its key (``checks.check_settings``); an accessor
reading one raises ``ImproperlyConfigured`` with the same message rather than guess
a value.

The scope of a run (a tenant, a site, or "" for an unscoped project) is read from
the connection the command runs on, which is not necessarily the one that holds the
history: django-tenants selects the tenant on its own alias (``TENANT_DB_ALIAS``,
``default`` unless set), while ``MANAGED_COMMANDS["DATABASE"]`` may name another.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Setting:
    """One key of ``MANAGED_COMMANDS``, with its default and its system check."""

    name: str
    default: Any
    # Turns a configured value into what the accessor returns, or raises
    # ValueError with what is wrong, as the end of a sentence ("must be ..., not -1").
    read: Callable[[Any], Any]
    check_id: str
    hint: str

    def message(self, problem: str) -> str:
        return f"MANAGED_COMMANDS[{self.name!r}] {problem}."

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this key; None when it is valid."""
        try:
            self.read(value)
        except ValueError as exc:
            return str(exc)
        return None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be an integer >= 0, not {value!r}")
    return value


def _seconds(value: Any) -> float:
    # "not >= 0" also refuses NaN, which compares false to everything.
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"must be a number >= 0, not {value!r}")
    return float(value)


def _option_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(n, str) for n in value):
        return tuple(value)
    raise ValueError(f"must be a list of option names, not {value!r}")


def _log_level(value: Any) -> int | None:
    """The level ``CAPTURE_LOGS`` captures at (None: not at all)."""
    if value is False or value is None:
        return None
    if value is True:
        return logging.INFO
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        # getLevelName() maps a registered name to its number, anything else to a string.
        level = logging.getLevelName(value.upper())
        if isinstance(level, int):
            return level
    raise ValueError(
        f"must be False, True, a logging level or its name such as 'INFO', not {value!r}"
    )


def _database(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value in settings.DATABASES):
        return value
    raise ValueError(f"must be None or an alias of DATABASES, not {value!r}")


def _function(value: Any) -> Callable[..., Any] | None:
    """The callable a setting gives itself or by its dotted path; None when unset."""
    if value is None or callable(value):
        return cast("Callable[..., Any] | None", value)
    if not isinstance(value, str):
        raise ValueError(f"is not a callable or a dotted path, but {value!r}")
    try:
        found = import_string(value)
    except ImportError as exc:
        raise ValueError(f"cannot be imported ({exc})") from None
    if not callable(found):
        raise ValueError(f"names {found!r}, which is not callable")
    return cast("Callable[..., Any]", found)


def _release(value: Any) -> str | Callable[[], Any] | None:
    if value is None or isinstance(value, str) or callable(value):
        return cast("str | Callable[[], Any] | None", value)
    raise ValueError(f"must be None, a string or a callable returning one, not {value!r}")


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of regular expressions, not {value!r}")
    compiled = []
    for pattern in value:
        if isinstance(pattern, re.Pattern):
            if not isinstance(pattern.pattern, str):
                raise ValueError(f"must hold text patterns, not the bytes pattern {pattern!r}")
        elif not isinstance(pattern, str):
            raise ValueError(f"must hold strings or compiled patterns, not {pattern!r}")
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"has a pattern that does not compile, {pattern!r}: {exc}") from None
    return tuple(compiled)


def _token(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and len(value) >= 16):
        return value
    raise ValueError("must be None or a string of at least 16 characters")


def _flag(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ValueError(f"must be True or False, not {value!r}")


SETTINGS: tuple[Setting, ...] = (
    # Characters of stdout (and of stderr) stored per run: the first and last
    # half are kept, with a marker at the cut.
    Setting(
        "OUTPUT_LIMIT",
        100_000,
        _count,
        "managed_commands.E011",
        "Give the number of characters of output stored per run; the default is 100000.",
    ),
    # Option names stored redacted, on top of the built-in secret-looking names.
    Setting(
        "SENSITIVE_OPTIONS",
        (),
        _option_names,
        "managed_commands.E012",
        "Give a list of option names, for example ['dsn', 'webhook_url']; "
        "the default is [] (only the built-in secret-looking names).",
    ),
    # False, or a logging level (True means INFO): log records emitted while a
    # command runs are stored with its stderr.
    Setting(
        "CAPTURE_LOGS",
        False,
        _log_level,
        "managed_commands.E013",
        "Use False (the default) to store no log records, True for INFO and above, "
        "or a level such as 'WARNING' or logging.WARNING.",
    ),
    # Seconds a start waits for a running holder of the same command.
    Setting(
        "WAIT_TIMEOUT",
        300,
        _seconds,
        "managed_commands.E014",
        "Give the seconds a start waits for a running holder of the same command; "
        "the default is 300.",
    ),
    # Seconds without a heartbeat after which a holder is presumed gone,
    # unless it can be checked by process (same host identity).
    Setting(
        "LEASE_SECONDS",
        60,
        _seconds,
        "managed_commands.E015",
        "Give the seconds without a heartbeat after which a run on another host is "
        "presumed gone; the default is 60.",
    ),
    # Database alias that holds the history; None asks the database routers.
    Setting(
        "DATABASE",
        None,
        _database,
        "managed_commands.E016",
        "Name an alias of DATABASES, or use None (the default) to let the database routers choose.",
    ),
    # Dotted path to a callable ``(connection) -> str`` returning the scope of
    # a run (a tenant, a site), given the connection the command runs on;
    # None detects django-tenants or uses "".
    Setting(
        "SCOPE",
        None,
        _function,
        "managed_commands.E017",
        "Give the dotted path of a function taking the connection and returning the "
        "scope, e.g. 'mysite.scopes.current_site', or None (the default).",
    ),
    # Print the pending run_once commands after ``migrate``.
    Setting(
        "MIGRATE_NOTICE",
        True,
        _flag,
        "managed_commands.E018",
        "Use True (the default) to list the pending run_once commands after migrate, or False.",
    ),
    # Seconds a run keeps reconnecting to record its start or its end when
    # the history database stops answering (a failover, a restart).
    Setting(
        "RECONNECT_TIMEOUT",
        30,
        _seconds,
        "managed_commands.E019",
        "Give the seconds a run keeps reconnecting to record its start or end; the default is 30.",
    ),
    # Regular expressions whose matches are stored as ******** in a run's
    # output, stderr, error message and traceback (never in what is shown live).
    Setting(
        "REDACT",
        (),
        _patterns,
        "managed_commands.E022",
        "Give a list of regular expressions (strings or re.compile() patterns), for example "
        "[r'sk_live_[0-9a-zA-Z]{24}']; the default is [].",
    ),
    # The release runs record: a string (e.g. the git SHA the deploy sets), a
    # callable returning one, or None to read $MANAGED_COMMANDS_RELEASE.
    Setting(
        "RELEASE",
        None,
        _release,
        "managed_commands.E024",
        "Give a string such as os.environ.get('GIT_SHA', ''), a function returning one, "
        "or None (the default) to read the environment variable MANAGED_COMMANDS_RELEASE.",
    ),
    # Dotted path to, or a callable ``(command) -> JSON`` whose result each run
    # records as its metadata; None records none.
    Setting(
        "METADATA",
        None,
        _function,
        "managed_commands.E025",
        "Give a function taking the command and returning JSON-ready data, or its "
        "dotted path, e.g. 'mysite.audit.run_metadata', or None (the default).",
    ),
    # Seconds a run enqueued for a task worker may wait to be started before a
    # later enqueue or start takes its claim over (recorded as abandoned).
    Setting(
        "QUEUE_TIMEOUT",
        3600,
        _seconds,
        "managed_commands.E032",
        "Give the seconds an enqueued run may wait for a worker before it is presumed "
        "lost; the default is 3600.",
    ),
    # A secret that lets a monitor read the cadence view without a staff session
    # (``Authorization: Bearer <token>``); None: staff only.
    Setting(
        "HEALTH_TOKEN",
        None,
        _token,
        "managed_commands.E035",
        "Give a long random string (read it from the environment), or None (the default) "
        "to let only staff users read the cadence view.",
    ),
)
BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


def _value(name: str) -> Any:
    """The value of setting ``name`` as its accessor returns it, read now (so
    ``override_settings`` works)."""
    configured = getattr(settings, "MANAGED_COMMANDS", {})
    if not isinstance(configured, dict):
        # The message of check E001.
        raise ImproperlyConfigured(
            f"MANAGED_COMMANDS must be a dict, not {type(configured).__name__}."
        )
    setting = BY_NAME[name]
    try:
        return setting.read(configured.get(name, setting.default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting.message(str(exc))} {setting.hint}") from None


def health_token() -> str | None:
    """Return the ``HEALTH_TOKEN`` a monitor may give to read the cadence view, or None."""
    return cast("str | None", _value("HEALTH_TOKEN"))


def output_limit() -> int:
    """Return how many characters of stdout (and of stderr) are stored per run."""
    return cast(int, _value("OUTPUT_LIMIT"))


def sensitive_options() -> tuple[str, ...]:
    """Return the option names stored redacted, on top of the built-in ones."""
    return cast("tuple[str, ...]", _value("SENSITIVE_OPTIONS"))


def redact_patterns() -> tuple[re.Pattern[str], ...]:
    """Return the ``REDACT`` patterns, compiled."""
    return cast("tuple[re.Pattern[str], ...]", _value("REDACT"))


def capture_logs_level() -> int | None:
    """Return the logging level to capture at, or None when logs are not captured."""
    return cast("int | None", _value("CAPTURE_LOGS"))


def wait_timeout() -> float:
    """Return the seconds a start waits for a running holder of the same command."""
    return cast(float, _value("WAIT_TIMEOUT"))


def lease_seconds() -> float:
    """Return the seconds without a heartbeat after which another host's holder is gone."""
    return cast(float, _value("LEASE_SECONDS"))


def queue_timeout() -> float:
    """Return the seconds an enqueued run may wait for a worker before it is presumed lost."""
    return cast(float, _value("QUEUE_TIMEOUT"))


def reconnect_timeout() -> float:
    """Return the seconds a run keeps reconnecting to record its start or its end."""
    return cast(float, _value("RECONNECT_TIMEOUT"))


def history_database() -> str:
    """Return the alias of the database that holds ``CommandExecution`` rows."""
    alias = _value("DATABASE")
    if alias is not None:
        return cast(str, alias)
    # Through the registry: the settings module sits below the model and never imports it.
    return router.db_for_write(apps.get_model("managed_commands", "CommandExecution"))


def scope_function() -> Callable[[Any], str] | None:
    """Return the configured scope callable, or None without a SCOPE setting."""
    return cast("Callable[[Any], str] | None", _value("SCOPE"))


def release() -> str | Callable[[], Any] | None:
    """Return ``RELEASE`` as configured: a string, a callable, or None (read the environment)."""
    return cast("str | Callable[[], Any] | None", _value("RELEASE"))


def metadata_function() -> Callable[[Any], Any] | None:
    """Return the configured metadata callable, or None without a METADATA setting."""
    return cast("Callable[[Any], Any] | None", _value("METADATA"))


def scope_setting_is_set() -> bool:
    """Return whether SCOPE names a scope callable (else the scope is django-tenants' or "")."""
    return scope_function() is not None


def migrate_notice() -> bool:
    """Return whether ``migrate`` lists the pending run_once commands."""
    return bool(_value("MIGRATE_NOTICE"))


def tenant_database() -> str:
    """Return the alias django-tenants selects tenants on (``settings.TENANT_DB_ALIAS``)."""
    return str(getattr(settings, "TENANT_DB_ALIAS", DEFAULT_DB_ALIAS))


def public_schema() -> str:
    """Return django-tenants' shared schema (``settings.PUBLIC_SCHEMA_NAME``)."""
    return str(getattr(settings, "PUBLIC_SCHEMA_NAME", "public"))


def tenant_app_lists() -> frozenset[str]:
    """Return which django-tenants app lists hold ``managed_commands``.

    A subset of ``{"SHARED_APPS", "TENANT_APPS"}``: with SHARED_APPS the public
    schema holds a history (the only one, or one of its own next to the
    tenants'); with TENANT_APPS only, each tenant's schema does and public none.
    """
    return frozenset(
        name
        for name in ("SHARED_APPS", "TENANT_APPS")
        if any(_is_this_app(entry) for entry in getattr(settings, name, ()))
    )


def _is_this_app(entry: str) -> bool:
    # An entry may name the package or its AppConfig ("managed_commands.apps....").
    return entry == "managed_commands" or entry.startswith("managed_commands.")


def command_database() -> str:
    """Return the alias of the connection commands run on (and tenants are selected on)."""
    return tenant_database()


def current_scope() -> str:
    """Return the scope of a run starting now in this thread.

    ``MANAGED_COMMANDS["SCOPE"]``, when set, is called with the command's
    connection. Otherwise the django-tenants schema selected on that
    connection is the scope, except the public schema, which is "" like an
    unscoped project.
    """
    connection = connections[command_database()]
    custom = scope_function()
    if custom is not None:
        return str(custom(connection) or "")
    schema = getattr(connection, "schema_name", None)
    if schema and schema != public_schema():
        return str(schema)
    return ""


def selected_tenant(using: str) -> Any:
    """Return the django-tenants tenant selected on ``using`` in this thread (None without it)."""
    return getattr(connections[using], "tenant", None)


def select_tenant(using: str, tenant: Any) -> None:
    """Select ``tenant`` on ``using`` in this thread, so tables resolve as where it was read.

    Django connections are per thread, and django-tenants starts each new one
    on the public schema: a helper thread writing a tenant's history must
    select that tenant first.
    """
    if tenant is not None:
        connections[using].set_tenant(tenant)  # type: ignore[attr-defined]


def tasks_api() -> Any:
    """``django.tasks`` (Django 6.0+) or the ``django_tasks`` backport; None without either."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None
