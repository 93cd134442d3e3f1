"""Heartbeats and stop requests of runs whose history is a SQLite file: files
beside the database.

SQLite lets one connection write at a time, and refuses without waiting the
write of a transaction that has read, once another connection has written
meanwhile. A heartbeat written into the database from its own thread would
therefore fail a command's own ``atomic()`` blocks that read and then write.
The beat touches a file instead: its modification time is the heartbeat, and
every process that opens the same database file finds it in the same folder,
whatever PID namespace (container) it runs in.

A stop request is a file for the same reason: a batch loop that commits batch
after batch holds the write lock nearly all the time, so another process's
write of the request could wait for the whole loop.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from functools import lru_cache
from pathlib import Path

from django.db import connections


def path_for(using: str, pk: int, kind: str = "beat") -> Path | None:
    """The ``beat`` (or ``stop``) file of run ``pk`` when ``using`` is a SQLite file, else None."""
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        return None
    return _folder(str(connection.settings_dict["NAME"])) / f"{pk}.{kind}"


@lru_cache(maxsize=16)
def _folder(database_name: str) -> Path:
    """The folder of beat files beside a database file (resolved once: it is on every run)."""
    database = Path(database_name).resolve()
    return database.parent / f".{database.name}.managed_commands"


def touch(path: Path) -> None:
    """Beat: create the file, or set its modification time to now."""
    try:
        os.utime(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def last_beat(using: str, pk: int) -> datetime.datetime | None:
    """When run ``pk`` last beat in its file (None without one)."""
    path = path_for(using, pk)
    if path is None:
        return None
    try:
        modified = path.stat().st_mtime
    except OSError:
        return None
    return datetime.datetime.fromtimestamp(modified, datetime.timezone.utc)


def remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def ask_to_stop(path: Path, process_token: str) -> None:
    """Write the stop request of the run held by ``process_token``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(process_token)


def stop_asked(path: Path, process_token: str) -> bool:
    """Whether a stop was asked of this very run (a file left for an earlier database's
    run with the same id does not count)."""
    try:
        return path.read_text() == process_token
    except OSError:
        return False
