"""The lease of a run: who holds it, whether that holder is still alive, and the
heartbeat that keeps this process's own leases fresh.

On the same host a holder is checked by PID paired with the process start
time (PIDs are reused); on another host only its heartbeat can tell, so a
holder that stopped beating for longer than the lease is presumed gone. The
heartbeat beats from one daemon thread: a dead process stops beating at once,
so a heartbeat never keeps a dead run alive.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import DatabaseError, connections
from django.utils import timezone

from managed_commands.recorder import ExecutionRecorder
from managed_commands.scopes import select_tenant, selected_tenant

if TYPE_CHECKING:
    from managed_commands.models import CommandExecution

logger = logging.getLogger("managed_commands")


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


class _Beat(NamedTuple):
    using: str
    tenant: Any
    interval: float


class _Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, _Beat] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, using: str, pk: int, lease_seconds: float) -> None:
        """Beat for run ``pk`` on ``using``, as seen from this thread's connection."""
        beat = _Beat(using, selected_tenant(using), max(lease_seconds / 4, 0.05))
        with self._lock:
            live = self._live
            shortest = min(other.interval for other in live.values()) if live else None
            live[pk] = beat
            thread = self._thread
            # A forked child inherits the object but not the thread: start its own.
            if thread is None or not thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="managed_commands-heartbeat", daemon=True
                )
                self._thread.start()
            elif shortest is not None and beat.interval < shortest:
                self._wake.set()

    def unregister(self, pk: int) -> None:
        with self._lock:
            self._live.pop(pk, None)

    def _interval(self) -> float:
        with self._lock:
            return min((beat.interval for beat in self._live.values()), default=60.0)

    def _run(self) -> None:
        last_beat = time.monotonic()
        while True:
            due = last_beat + self._interval() - time.monotonic()
            if self._wake.wait(max(due, 0.0)):
                # A run with a shorter lease arrived: recompute when to beat.
                self._wake.clear()
                continue
            last_beat = time.monotonic()
            with self._lock:
                live = list(self._live.items())
            for pk, beat in live:
                try:
                    # The row may live in a tenant's schema (django-tenants), which
                    # this thread's own connection has not selected.
                    select_tenant(beat.using, beat.tenant)
                    ExecutionRecorder(beat.using).heartbeat([pk])
                except DatabaseError:
                    logger.warning("managed_commands: heartbeat failed", exc_info=True)
            for using in {beat.using for _, beat in live}:
                # Beats are rare; do not keep an idle connection open between them.
                connections[using].close()


heartbeat = _Heartbeat()
