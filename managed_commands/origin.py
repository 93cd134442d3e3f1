"""Who started a run, from which release, in which process on which host: what each row
keeps in ``origin`` and ``metadata``, and the host and process identities a claim holds.

``origin`` holds ``trigger`` (``manage.py``, ``call_command``,
``run_pending_commands``, ``admin``, ``worker`` or what the caller of
``started_by()`` names), ``os_user``, ``django_user`` (a username, kept as text
so the history outlives the account) and ``release``. No model is loaded here:
``manage.py <command> --help`` passes through ``started_by()``.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from managed_commands import conf

__all__ = ["RELEASE_ENVIRONMENT_VARIABLE", "started_by"]

logger = logging.getLogger("managed_commands")

#: Read for the release when ``MANAGED_COMMANDS["RELEASE"]`` is not set.
RELEASE_ENVIRONMENT_VARIABLE = "MANAGED_COMMANDS_RELEASE"


@dataclass(frozen=True)
class _Starter:
    trigger: str
    django_user: str


_STARTER: ContextVar[_Starter | None] = ContextVar("managed_commands_starter", default=None)

# A run started by no one in particular was called from code.
_FROM_CODE = _Starter("call_command", "")


@contextmanager
def started_by(trigger: str, user: Any = None) -> Iterator[None]:
    """Record ``trigger`` and the Django ``user`` on the runs started inside the block.

    Runs that those runs start in turn (``call_command()`` inside ``handle()``)
    record ``call_command``, with the same user.

    Args:
        trigger: What starts the runs, for example ``"admin"`` or ``"nightly-cron"``.
        user: The Django user who asked for them (its username is stored); None
            keeps the user of an enclosing block, if any.
    """
    token = _start(trigger, user)
    try:
        yield
    finally:
        _STARTER.reset(token)


def origin() -> dict[str, str]:
    """The ``origin`` of a run starting now."""
    starter = _starter()
    return {
        "trigger": starter.trigger,
        "os_user": os_user(),
        "django_user": starter.django_user,
        "release": release(),
    }


def release() -> str:
    """``MANAGED_COMMANDS["RELEASE"]`` (a string, or a callable returning one), else
    ``$MANAGED_COMMANDS_RELEASE``; "" when neither says, or the callable fails."""
    configured = conf.release()
    if configured is None:
        return os.environ.get(RELEASE_ENVIRONMENT_VARIABLE, "")
    if isinstance(configured, str):
        return configured
    try:
        return str(configured())
    except Exception:  # a broken release hook must not stop a run
        logger.warning(
            "MANAGED_COMMANDS['RELEASE'] failed; the run records no release.", exc_info=True
        )
        return ""


def metadata(command: Any) -> Any:
    """What ``MANAGED_COMMANDS["METADATA"]`` returns for ``command`` (None without
    the setting, or when it fails: a run never stops for it)."""
    hook = conf.metadata_function()
    if hook is None:
        return None
    try:
        return hook(command)
    except Exception:  # a broken metadata hook must not stop a run
        logger.warning(
            "MANAGED_COMMANDS['METADATA'] failed; the run records no metadata.", exc_info=True
        )
        return None


@cache
def os_user() -> str:
    """The login name of the process's user; its uid where it has none (a container)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else ""


def _start(trigger: str, user: Any) -> Token[_Starter | None]:
    """Record ``trigger`` and ``user`` (None: the enclosing block's) for the runs started next."""
    django_user = _starter().django_user if user is None else _username(user)
    return _STARTER.set(_Starter(trigger, django_user))


def _starter() -> _Starter:
    return _STARTER.get() or _FROM_CODE


def _username(user: Any) -> str:
    if not getattr(user, "is_authenticated", True):
        return ""
    get_username = getattr(user, "get_username", None)
    return str(get_username() if callable(get_username) else user)


# --- this host and this process, as a claim records them ---


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()[:255]


@lru_cache(maxsize=1)
def host_identity() -> str:
    """The boot, PID namespace and machine of this process ("" where /proc cannot tell).

    Two processes whose identities are equal see the same PIDs, so one can
    check the other's PID; otherwise only a heartbeat can tell. Read once per
    process: a fork stays in its parent's namespace.
    """
    boot = _first_line("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    if not boot:
        return ""
    machine = _first_line("/etc/machine-id") or _first_line("/var/lib/dbus/machine-id")
    return f"{boot}/{namespace}/{machine}"[:128]


def _first_line(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.readline().strip()
    except OSError:
        return ""


def _read_stat(pid: int) -> tuple[str, str] | None:
    """Return (state, start time in clock ticks) from /proc, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            raw = stat.read()
    except OSError:
        return None
    # The command name in parentheses may itself contain spaces or ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], fields[19]


def process_token(pid: int) -> str:
    """Return an opaque token identifying this incarnation of ``pid`` (empty if unknown)."""
    stat = _read_stat(pid)
    return stat[1] if stat else ""


def own_process_token() -> str:
    """The token of this process, read once (keyed by PID, so a fork reads its own)."""
    return _own_token(os.getpid())


@lru_cache(maxsize=1)
def _own_token(pid: int) -> str:
    return process_token(pid)


def process_is_running(pid: int, token: str) -> bool:
    """Tell whether ``pid`` of this host identity is still the process that wrote ``token``.

    Asked only where ``host_identity()`` is known, which needs /proc.
    """
    stat = _read_stat(pid)
    if stat is None:
        return False
    state, started = stat
    # A zombie has exited; only its parent has not reaped it yet.
    if state in ("Z", "X", "x"):
        return False
    return not token or started == token
