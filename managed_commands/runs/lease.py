"""Tell whether the process that holds a run is still alive.

On the same host a holder is checked by PID paired with the process start
time (PIDs are reused); on another host only its heartbeat can tell, so a
holder that stopped beating for longer than the lease is presumed gone.
"""

from __future__ import annotations

import datetime
import os
import socket
from functools import lru_cache
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from managed_commands.models import CommandExecution


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()[:255]


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


def _has_proc() -> bool:
    return os.path.isdir("/proc/self")


def process_token(pid: int) -> str:
    """Return an opaque token identifying this incarnation of ``pid`` (empty if unknown)."""
    stat = _read_stat(pid) if _has_proc() else None
    return stat[1] if stat else ""


def own_process_token() -> str:
    """The token of this process, read once (keyed by PID, so a fork reads its own)."""
    return _own_token(os.getpid())


@lru_cache(maxsize=1)
def _own_token(pid: int) -> str:
    return process_token(pid)


def process_is_running(pid: int, token: str) -> bool:
    """Tell whether ``pid`` on this host is still the process that wrote ``token``."""
    if not _has_proc():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stat = _read_stat(pid)
    if stat is None:
        return False
    state, started = stat
    # A zombie has exited; only its parent has not reaped it yet.
    if state in ("Z", "X", "x"):
        return False
    return not token or started == token


def why_gone(
    holder: CommandExecution, lease_seconds: float, now: datetime.datetime | None = None
) -> str | None:
    """Return why ``holder`` no longer holds its run, or None while it may still be alive."""
    if holder.hostname == hostname() and holder.pid:
        if process_is_running(holder.pid, holder.process_token):
            return None
        return f"process {holder.pid} on {holder.hostname} is no longer running"
    now = now or timezone.now()
    last_sign = holder.heartbeat_at or holder.executed_at
    silent = (now - last_sign).total_seconds()
    if silent <= lease_seconds:
        return None
    return (
        f"no heartbeat from process {holder.pid} on {holder.hostname or 'an unknown host'} "
        f"for {silent:.0f} s (lease {lease_seconds:g} s)"
    )
