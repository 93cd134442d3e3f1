"""Keep the lease of this process's live runs fresh, from one daemon thread.

Holders on other hosts are presumed gone once their heartbeat is older than
the lease. The thread is a daemon: a dead process stops beating at once, so a
heartbeat never keeps a dead run alive.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, NamedTuple

from django.db import DatabaseError, connections

from managed_commands.recorder import ExecutionRecorder
from managed_commands.scopes import select_tenant, selected_tenant

logger = logging.getLogger("managed_commands")


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
        tenant = selected_tenant(using)
        with self._lock:
            interval = max(lease_seconds / 4, 0.05)
            shortest = min((beat.interval for beat in self._live.values()), default=None)
            self._live[pk] = _Beat(using, tenant, interval)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="managed_commands-heartbeat", daemon=True
                )
                self._thread.start()
            elif shortest is not None and interval < shortest:
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
