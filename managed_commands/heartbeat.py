"""Keep the lease of this process's live runs fresh, from one daemon thread.

Holders on other hosts are presumed gone once their heartbeat is older than
the lease. The thread is a daemon: a dead process stops beating at once, so a
heartbeat never keeps a dead run alive.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError, connections

from managed_commands.recorder import ExecutionRecorder

logger = logging.getLogger("managed_commands")


class _Heartbeat:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, tuple[str, float]] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, using: str, pk: int, lease_seconds: float) -> None:
        with self._lock:
            interval = max(lease_seconds / 4, 0.05)
            shortest = min((i for _, i in self._live.values()), default=None)
            self._live[pk] = (using, interval)
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
            return min((interval for _, interval in self._live.values()), default=60.0)

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
                by_database: dict[str, list[int]] = {}
                for pk, (using, _) in self._live.items():
                    by_database.setdefault(using, []).append(pk)
            for using, pks in by_database.items():
                try:
                    ExecutionRecorder(using).heartbeat(pks)
                except DatabaseError:
                    logger.warning("managed_commands: heartbeat failed", exc_info=True)
                finally:
                    # Beats are rare; do not keep an idle connection open between them.
                    connections[using].close()


heartbeat = _Heartbeat()
