"""Read and validate what a ManagedBaseCommand subclass declares.

The same validation serves discovery (each command read once per process),
the run (a clear error instead of a traceback) and the system checks (an
error at ``manage.py check`` time).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.apps import apps

from managed_commands.exceptions import InvalidDefinition

if TYPE_CHECKING:  # the recorder loads the model: base.py imports this module without it
    pass

#: Runs before ``migrate`` (``run_pending_commands --phase pre_migrate``).
PRE_MIGRATE = "pre_migrate"
#: Runs after ``migrate``: the default.
POST_MIGRATE = "post_migrate"
PHASES = (PRE_MIGRATE, POST_MIGRATE)


@dataclass(frozen=True)
class Definition:
    """What a managed command declares, once validated.

    Attributes:
        name: The name typed after ``manage.py``.
        app_label: Label of the app that provides it ("" when none does).
        run_once: Whether a successful run makes it done.
        requires: Its ``requires`` entries, in declared order: command names
            and ``"app_label.migration"`` entries.
        allow_concurrent: Whether two runs may overlap.
        sensitive_options: Option names stored redacted.
        module: Dotted name of its command module.
        lease_seconds: Its own lease, or None for ``MANAGED_COMMANDS["LEASE_SECONDS"]``.
        resume: Whether a run picks up the saved cursor of a run that did not
            finish (always so for a run_once command).
        supports_dry_run: Whether it takes ``--dry-run`` (an audited, rolled-back run).
        statement_timeout: Seconds one statement of ``handle()`` may run, or None.
        lock_timeout: Seconds one statement of ``handle()`` may wait for a lock, or None.
        time_limit: Seconds the whole run may take before it is stopped, or None.
        phase: ``"pre_migrate"`` or ``"post_migrate"``: when in a deploy it runs.
        tags: Its tags, for ``--tag`` selections.
        replaces: Its ``replaces`` entries: the names it had before a rename
            (``"old_name"`` or ``"other_app.old_name"``).
        expected_every: Seconds between two expected successes, or None (no cadence).
        expected_grace: Seconds of slack after ``expected_every`` (its default
            filled in: ``default_grace()``), or None without a cadence.
        expected_duration_max: Seconds one run may take before it is
            overrunning, or None.
    """

    name: str
    app_label: str
    run_once: bool
    requires: tuple[str, ...]
    allow_concurrent: bool
    sensitive_options: tuple[str, ...]
    module: str
    lease_seconds: float | None = None
    resume: bool = False
    supports_dry_run: bool = False
    statement_timeout: float | None = None
    lock_timeout: float | None = None
    time_limit: float | None = None
    phase: str = POST_MIGRATE
    tags: frozenset[str] = frozenset()
    replaces: tuple[str, ...] = ()
    expected_every: float | None = None
    expected_grace: float | None = None
    expected_duration_max: float | None = None

    @property
    def recurring(self) -> bool:
        """Whether it declares a cadence or a longest duration: the listings watch it."""
        return self.expected_every is not None or self.expected_duration_max is not None

    @property
    def replaced_names(self) -> tuple[str, ...]:
        """The command names of its ``replaces``: history is keyed by name, not app."""
        return replaced_names(self.replaces)

    @property
    def history_names(self) -> tuple[str, ...]:
        """Every name its runs were recorded under: its own, then the replaced ones."""
        return (self.name, *self.replaced_names)

    @property
    def timeouts(self) -> bool:
        """Whether it asks the database to stop its long statements or lock waits."""
        return self.statement_timeout is not None or self.lock_timeout is not None

    @property
    def resumes(self) -> bool:
        """Whether its batch loops continue from the cursor of an unfinished run."""
        return self.run_once or self.resume

    @property
    def command_requires(self) -> tuple[str, ...]:
        """Entries naming other commands."""
        return split_requires(self.requires)[0]

    @property
    def migration_requires(self) -> tuple[tuple[str, str], ...]:
        """Entries naming migrations, as ``(app_label, migration_name)`` pairs."""
        return split_requires(self.requires)[1]

    @property
    def source_file(self) -> str:
        """Path of the command module's file ("" when unknown)."""
        return source_file(self.module)

    def current_source_hash(self) -> str:
        """SHA-256 of the source file as it is on disk now ("" when unreadable)."""
        return hash_file(self.source_file)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with what a command declares, as the system checks report it.

    Attributes:
        id: The check id, for example ``"managed_commands.E007"``.
        message: What is wrong, naming the class and attribute.
        hint: How to fix it.
    """

    id: str
    message: str
    hint: str


def split_requires(
    entries: Iterable[str],
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Split ``requires`` entries into command names and migrations, each in given order.

    Returns:
        The command names, and the ``(app_label, migration_name)`` pairs of the
        entries with a dot (``"shop.0002_add_price"``).
    """
    commands: list[str] = []
    migrations: list[tuple[str, str]] = []
    for entry in entries:
        app, dot, migration = entry.partition(".")
        if dot:
            migrations.append((app, migration))
        else:
            commands.append(entry)
    return tuple(commands), tuple(migrations)


def replaced_names(entries: Iterable[str]) -> tuple[str, ...]:
    """The command names of ``replaces`` entries (``"other_app.old_name"`` -> ``"old_name"``)."""
    return tuple(entry.rpartition(".")[2] for entry in entries)


def command_class_of(app_name: str, name: str) -> Any:
    """The ``Command`` class of command ``name`` of app ``app_name`` (None when it has none).

    Raises whatever importing its module raises.
    """
    module = importlib.import_module(f"{app_name}.management.commands.{name}")
    return getattr(module, "Command", None)


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
    """Label of the installed app whose module holds ``command_class`` ("" when none)."""
    config = apps.get_containing_app_config(command_class.__module__)
    return config.label if config else ""


def _is_names(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset) and all(
        isinstance(item, str) and item for item in value
    )


_FLAGS = ("run_once", "allow_concurrent", "resume", "supports_dry_run")
_FLAG_HINT = "run_once, allow_concurrent, resume and supports_dry_run are True or False."
_REQUIRES_HINT = (
    "requires is a list of command names and 'app_label.migration' entries, "
    "for example ['load_catalog', 'shop.0007_add_price']."
)
_ITSELF_HINT = "Remove the command's own name from requires: no run could come before itself."
_SENSITIVE_HINT = "sensitive_options is a list of option names, for example ['dsn']."
_RESUME_HINT = (
    "Drop resume = True, or allow_concurrent = True: only one run at a time can continue "
    "from a saved cursor."
)
_PHASE_HINT = (
    "phase is 'pre_migrate' (run before migrate, by run_pending_commands --phase pre_migrate) "
    "or 'post_migrate' (the default: run after migrate)."
)
_TAGS_HINT = "tags is a set of non-empty strings, for example {'search', 'backfill'}."
_REPLACES_HINT = (
    "replaces lists the names the command had before a rename: 'old_name', or "
    "'other_app.old_name' when it moved from another app, for example ['backfill_slug']."
)
_LEASE_HINT = (
    "lease_seconds is None (MANAGED_COMMANDS['LEASE_SECONDS']) or the seconds without a "
    "heartbeat after which a run of this command is presumed gone, for example 300."
)

_TIMEOUT_HINT = (
    "statement_timeout, lock_timeout and time_limit are None (no limit) or a number of "
    "seconds above 0, for example 30 or 0.5."
)
#: The attributes that limit how long a run or its statements take (check E023).
TIMEOUT_ATTRIBUTES = ("statement_timeout", "lock_timeout", "time_limit")


_CADENCE_HINT = (
    "expected_every, expected_grace and expected_duration_max are None or a duration above 0: "
    "a timedelta or seconds, for example expected_every = timedelta(hours=1)."
)
_CADENCE_ONCE_HINT = (
    "Remove expected_every and expected_duration_max, or run_once = True: a run_once command "
    "runs once, so it never has a next run to expect."
)
_GRACE_HINT = "Set expected_every too, or remove expected_grace: the grace is added to it."
#: The attributes declaring what to expect of a recurring command (check E033).
CADENCE_ATTRIBUTES = ("expected_every", "expected_grace", "expected_duration_max")
#: The grace when none is declared: this fraction of ``expected_every``, at least ``GRACE_FLOOR``.
GRACE_FRACTION = 0.1
#: Seconds: the least default grace (cron starts on the minute, and a start takes a moment).
GRACE_FLOOR = 60.0


def default_grace(every: float) -> float:
    """The grace of a cadence of ``every`` seconds that declares none."""
    return max(every * GRACE_FRACTION, GRACE_FLOOR)


def duration_seconds(value: Any) -> float | None:
    """Seconds of a duration given as a ``timedelta`` or a number; None when it is neither,
    or not finite and above 0."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    return float(value) if _is_seconds(value) else None


def _cadence_problems(where: str, cls: Any) -> list[Problem]:
    """E033: a cadence attribute is not a duration; E034: a run_once command with a
    cadence, or a grace without a cadence."""
    found = [
        Problem(
            "managed_commands.E033",
            f"{where}.{attribute} must be None or a duration above 0 (a timedelta or "
            f"seconds), not {value!r}.",
            _CADENCE_HINT,
        )
        for attribute in CADENCE_ATTRIBUTES
        if (value := getattr(cls, attribute, None)) is not None and duration_seconds(value) is None
    ]
    declared = [a for a in CADENCE_ATTRIBUTES if getattr(cls, a, None) is not None]
    if cls.run_once is True and declared:
        found.append(
            Problem(
                "managed_commands.E034",
                f"{where} is run_once but declares {', '.join(declared)}: a command that "
                f"runs once is never expected again.",
                _CADENCE_ONCE_HINT,
            )
        )
    elif getattr(cls, "expected_grace", None) is not None and cls.expected_every is None:
        found.append(
            Problem(
                "managed_commands.E034",
                f"{where}.expected_grace is set without expected_every.",
                _GRACE_HINT,
            )
        )
    return found


def _is_seconds(value: Any) -> bool:
    """A finite number above 0 (not a bool, which is an int to Python)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )


def problems(command_class: type) -> list[Problem]:
    """Describe every attribute of ``command_class`` that has the wrong type or value.

    Returns:
        One ``Problem`` per mistake, with its check id: ``managed_commands.E002``
        (run_once, allow_concurrent, resume or supports_dry_run not True/False),
        ``E007`` (requires not a list of names), ``E008`` (requires names the
        command itself), ``E009`` (sensitive_options not a list of option
        names), ``E020`` (lease_seconds not None or a positive number),
        ``E021`` (resume with allow_concurrent: two overlapping runs would
        resume one cursor), ``E023`` (statement_timeout, lock_timeout or
        time_limit not None or a positive number), ``E026`` (phase not
        "pre_migrate" or "post_migrate"), ``E027`` (tags not a set of
        non-empty strings), ``E029`` (replaces not a list of old names),
        ``E033`` (expected_every, expected_grace or expected_duration_max not
        None or a duration above 0) or ``E034`` (a run_once command with a
        cadence, or a grace without expected_every).
    """
    cls: Any = command_class
    where = f"{cls.__module__}.{cls.__name__}"
    name = command_name(cls)
    found = []
    for attribute in _FLAGS:
        value = getattr(cls, attribute)
        if not isinstance(value, bool):
            found.append(
                Problem(
                    "managed_commands.E002",
                    f"{where}.{attribute} must be True or False, not {value!r}.",
                    _FLAG_HINT,
                )
            )
    requires = cls.requires
    if isinstance(requires, str):
        found.append(
            Problem(
                "managed_commands.E007",
                f"{where}.requires must be a list of command names, "
                f"for example requires = [{requires!r}], not the string {requires!r}.",
                _REQUIRES_HINT,
            )
        )
    elif not _is_names(requires):
        found.append(
            Problem(
                "managed_commands.E007",
                f"{where}.requires must be a list of command names (strings), not {requires!r}.",
                _REQUIRES_HINT,
            )
        )
    elif name in requires:
        found.append(
            Problem(
                "managed_commands.E008",
                f"{where}.requires names the command itself ({name!r}).",
                _ITSELF_HINT,
            )
        )
    if cls.sensitive_options and not _is_names(cls.sensitive_options):
        found.append(
            Problem(
                "managed_commands.E009",
                f"{where}.sensitive_options must be a list of option names, "
                f"not {cls.sensitive_options!r}.",
                _SENSITIVE_HINT,
            )
        )
    lease = cls.lease_seconds
    if lease is not None and (
        isinstance(lease, bool) or not isinstance(lease, int | float) or not lease > 0
    ):
        found.append(
            Problem(
                "managed_commands.E020",
                f"{where}.lease_seconds must be None or a number of seconds > 0, not {lease!r}.",
                _LEASE_HINT,
            )
        )
    for attribute in TIMEOUT_ATTRIBUTES:
        value = getattr(cls, attribute)
        if value is not None and not _is_seconds(value):
            found.append(
                Problem(
                    "managed_commands.E023",
                    f"{where}.{attribute} must be None or a number of seconds > 0, not {value!r}.",
                    _TIMEOUT_HINT,
                )
            )
    if cls.resume is True and cls.allow_concurrent is True:
        found.append(
            Problem(
                "managed_commands.E021",
                f"{where} sets both resume and allow_concurrent: two runs at once would "
                f"both continue from the same saved cursor and process its rows twice.",
                _RESUME_HINT,
            )
        )
    if cls.phase not in PHASES:
        found.append(
            Problem(
                "managed_commands.E026",
                f"{where}.phase must be 'pre_migrate' or 'post_migrate', not {cls.phase!r}.",
                _PHASE_HINT,
            )
        )
    if not _is_names(cls.tags):
        found.append(
            Problem(
                "managed_commands.E027",
                f"{where}.tags must be a set of non-empty strings, not {cls.tags!r}.",
                _TAGS_HINT,
            )
        )
    found += replaces_problems(where, name, cls.replaces)
    found += _cadence_problems(where, cls)
    return found


def _is_replaced_entry(entry: Any) -> bool:
    app, _, old_name = entry.rpartition(".") if isinstance(entry, str) else ("", "", "")
    return bool(old_name) and "." not in app and (not app or app.isidentifier())


def replaces_problems(where: str, name: str, replaces: Any) -> list[Problem]:
    """E029: ``replaces`` is not a list of 'old_name' / 'app.old_name' entries, or names itself."""
    if isinstance(replaces, str) or not isinstance(replaces, list | tuple | set | frozenset):
        return [
            Problem(
                "managed_commands.E029",
                f"{where}.replaces must be a list of command names, not {replaces!r}.",
                _REPLACES_HINT,
            )
        ]
    found = [
        Problem(
            "managed_commands.E029",
            f"{where}.replaces has {entry!r}, which is not 'old_name' or 'app_label.old_name'.",
            _REPLACES_HINT,
        )
        for entry in replaces
        if not _is_replaced_entry(entry)
    ]
    if not found and name in replaced_names(replaces):
        found.append(
            Problem(
                "managed_commands.E029",
                f"{where}.replaces names the command itself ({name!r}).",
                "Its own history already counts: list only the names it had before.",
            )
        )
    return found


def read(command_class: type) -> Definition:
    """Return the validated definition; raises ``InvalidDefinition`` listing every problem.

    Read afresh on every call, so a class attribute changed since (a test's
    patch) is seen.
    """
    found = problems(command_class)
    if found:
        raise InvalidDefinition(" ".join(problem.message for problem in found))
    cls: Any = command_class
    return Definition(
        name=command_name(cls),
        app_label=app_label(cls),
        run_once=cls.run_once,
        requires=tuple(cls.requires),
        allow_concurrent=cls.allow_concurrent,
        sensitive_options=tuple(cls.sensitive_options),
        module=cls.__module__,
        lease_seconds=None if cls.lease_seconds is None else float(cls.lease_seconds),
        resume=cls.resume,
        supports_dry_run=cls.supports_dry_run,
        statement_timeout=_seconds(cls.statement_timeout),
        lock_timeout=_seconds(cls.lock_timeout),
        time_limit=_seconds(cls.time_limit),
        phase=cls.phase,
        tags=frozenset(cls.tags),
        replaces=tuple(cls.replaces),
        expected_every=(every := duration_seconds(getattr(cls, "expected_every", None))),
        expected_grace=_grace(every, getattr(cls, "expected_grace", None)),
        expected_duration_max=duration_seconds(getattr(cls, "expected_duration_max", None)),
    )


def _grace(every: float | None, grace: Any) -> float | None:
    if every is None:
        return None
    return duration_seconds(grace) if grace is not None else default_grace(every)


def _seconds(value: float | None) -> float | None:
    return None if value is None else float(value)


# -- Whether a run's ``requires`` are met: other commands that succeeded,
# migrations that are applied.
