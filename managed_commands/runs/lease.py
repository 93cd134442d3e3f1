"""The lease of a run: who holds it, whether that holder is still alive, and the
heartbeat that keeps this process's own leases fresh.

A holder's PID (paired with its start time, as PIDs are reused) is checked
only by a process with the same host identity: the same boot of the same
machine and the same PID namespace. A hostname is not enough: containers with
host networking share it, each with PIDs of its own. Any other holder is
judged by its heartbeat, and presumed gone once it has been silent for longer
than the lease. The heartbeat beats from one daemon thread: a dead process
stops beating at once, so a heartbeat never keeps a dead run alive. Each beat
names the claim it renews, so a holder whose claim was taken over learns it
at its next beat.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from django.db import DatabaseError, connections
from django.utils import timezone

from managed_commands import conf
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import beatfile
from managed_commands.scopes import select_tenant, selected_tenant

logger = logging.getLogger("managed_commands")


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


def is_this_process(holder: CommandExecution) -> bool:
    """Tell whether ``holder`` is a run of this very process."""
    return holder.pid == os.getpid() and _same_host(holder)


def _same_host(holder: CommandExecution) -> bool:
    identity = host_identity()
    return bool(identity) and holder.host_id == identity


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


def why_gone(
    holder: CommandExecution, lease_seconds: float, now: datetime.datetime | None = None
) -> str | None:
    """Return why ``holder`` no longer holds its run, or None while it may still be alive.

    A run enqueued for a task worker is gone once it waited longer than
    ``QUEUE_TIMEOUT`` for one; a running one is judged by its process when
    this host can check it, by its heartbeat lease otherwise.
    """
    now = now or timezone.now()
    if holder.status == CommandExecution.Status.QUEUED:
        waited = (now - (holder.enqueued_at or holder.executed_at)).total_seconds()
        limit = conf.queue_timeout()
        if waited <= limit:
            return None
        return (
            f"enqueued {waited:.0f} s ago and never started by a worker (QUEUE_TIMEOUT {limit:g} s)"
        )
    if holder.pid and _same_host(holder):
        if process_is_running(holder.pid, holder.process_token):
            return None
        return f"process {holder.pid} on {holder.hostname} is no longer running"
    silent = (now - last_heard(holder)).total_seconds()
    if silent <= lease_seconds:
        return None
    return (
        f"no heartbeat from process {holder.pid} on {holder.hostname or 'an unknown host'} "
        f"for {silent:.0f} s (lease {lease_seconds:g} s)"
    )


def last_heard(holder: CommandExecution) -> datetime.datetime:
    """When ``holder`` last gave a sign of life: its newest heartbeat (in its row, or
    in its beat file on SQLite), else its start."""
    last_sign = holder.heartbeat_at or holder.executed_at
    if holder._state.db and holder.pk:
        in_file = beatfile.last_beat(holder._state.db, holder.pk)
        last_sign = max(last_sign, in_file) if in_file else last_sign
    return last_sign


class _Beat(NamedTuple):
    using: str
    tenant: Any
    lock_key: str
    interval: float
    on_lost: Callable[[], None]


class _Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, _Beat] = {}
        # The beat files written so far, removed when their run ends.
        self._touched: dict[int, Path] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(
        self,
        using: str,
        pk: int,
        lock_key: str,
        lease_seconds: float,
        on_lost: Callable[[], None],
    ) -> None:
        """Beat for run ``pk`` while it holds ``lock_key``; call ``on_lost`` if it stops holding it.

        The beat writes on ``using`` as seen from this thread's connection
        (the tenant selected on it).
        """
        interval = max(lease_seconds / 4, 0.05)
        beat = _Beat(using, selected_tenant(using), lock_key, interval, on_lost)
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
        """Stop beating for run ``pk``; called before its end releases the claim, so that
        a beat already on its way finds the claim gone without judging it taken over."""
        with self._lock:
            self._live.pop(pk, None)
            touched = self._touched.pop(pk, None)
        if touched:
            beatfile.remove(touched)

    def _interval(self) -> float:
        with self._lock:
            return min((beat.interval for beat in self._live.values()), default=60.0)

    def _run(self) -> None:
        last_beat = time.monotonic()
        opened: set[str] = set()
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
                opened.add(beat.using)
                self._beat(pk, beat)
            # One connection per database while runs beat on it (not one per
            # beat, which a server at max_connections could refuse), none after.
            for using in opened - {beat.using for _, beat in live}:
                connections[using].close()
            opened.intersection_update(beat.using for _, beat in live)

    def _touch(self, pk: int, file: Path) -> None:
        try:
            beatfile.touch(file)
        except OSError as exc:
            logger.warning(
                "managed_commands: the heartbeat of run #%s could not touch %s (%s)", pk, file, exc
            )
            return
        with self._lock:
            ended = pk not in self._live
            if not ended:
                self._touched[pk] = file
        if ended:  # the run ended while this beat was on its way
            beatfile.remove(file)

    def _beat(self, pk: int, beat: _Beat) -> None:
        try:
            # The row may live in a tenant's schema (django-tenants), which
            # this thread's own connection has not selected.
            select_tenant(beat.using, beat.tenant)
            recorder = ExecutionRecorder(beat.using)
            # On SQLite the run beats in a file instead of its row (see beatfile).
            # The start of the row is the first sign of life: the file is
            # written at the first beat only, so a short run touches no file.
            file = beatfile.path_for(beat.using, pk)
            if file:
                # Only read the database: a write here could fail the command's own.
                self._touch(pk, file)
                held = recorder.holds(pk, beat.lock_key)
            else:
                held = recorder.renew(pk, beat.lock_key)
        except DatabaseError as exc:
            logger.warning(
                "managed_commands: the heartbeat of run #%s could not be written (%s: %s); "
                "trying again at the next beat.",
                pk,
                type(exc).__name__,
                str(exc).strip(),
            )
            # A broken connection stays broken: the next beat opens a new one.
            connections[beat.using].close_if_unusable_or_obsolete()
            return
        if held:
            return
        with self._lock:
            # A run stops beating before its end releases the claim: one that
            # stopped meanwhile released it itself, and was not taken over.
            if self._live.pop(pk, None) is None:
                return
        logger.error(
            "managed_commands: run #%s no longer holds its claim: another process took it "
            "over after its lease ran out. Stopping the run.",
            pk,
        )
        beat.on_lost()


heartbeat = _Heartbeat()
