"""Keep the record of a failed run that ran inside a caller's transaction.

A run started inside ``transaction.atomic()`` (a data migration, a view under
``ATOMIC_REQUESTS``, a script's own block) writes its row on the caller's
connection, so the row commits or rolls back with the caller's work. For a
success that is right: work that was undone must leave a run_once command
pending. A failure, though, must not vanish with the rollback. A watcher
thread waits until the caller's transaction has ended, then, through a
connection of its own, writes the failed row again if the rollback took it.

Waiting is what makes this work on SQLite too, where a second connection
cannot write while the caller's transaction holds the database. Inside a
test's transaction (Django's ``TestCase``, pytest-django's ``db`` fixture)
nothing is kept: a committed row would leak into later tests.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.scopes import select_tenant, selected_tenant

logger = logging.getLogger("managed_commands")
_POLL_SECONDS = 0.02
_EXIT_WAIT_SECONDS = 30.0
_watchers: list[tuple[threading.Thread, str]] = []


def in_test_transaction(using: str) -> bool:
    """Tell whether the connection is inside a transaction a test case opened."""
    blocks = connections[using].atomic_blocks
    return any(getattr(block, "_from_testcase", False) for block in blocks)


def keep_if_rolled_back(execution: CommandExecution, using: str) -> None:
    """Write ``execution`` again once the caller's transaction has ended, if it rolled back."""
    caller = connections[using]
    fields = {
        field.attname: getattr(execution, field.attname)
        for field in CommandExecution._meta.concrete_fields
        if not field.primary_key
    }
    watcher = threading.Thread(
        target=_keep,
        args=(caller, using, selected_tenant(using), execution.pk, fields),
        name="managed_commands-failure-keeper",
        daemon=True,
    )
    watcher.start()
    _watchers[:] = [(other, alias) for other, alias in _watchers if other.is_alive()]
    _watchers.append((watcher, using))


def _keep(
    caller: BaseDatabaseWrapper, using: str, tenant: Any, pk: int, fields: dict[str, Any]
) -> None:
    # The caller's connection belongs to its thread: only its plain attributes
    # are read here. Autocommit comes back once the commit or rollback is done.
    while not (caller.autocommit or caller.connection is None):
        time.sleep(_POLL_SECONDS)
    try:
        select_tenant(using, tenant)
        recorder = ExecutionRecorder(using)
        if not recorder.executions.filter(pk=pk).exists():
            kept = recorder.record(**fields)
            logger.info("Failed run #%s was rolled back with its caller: kept as #%s", pk, kept.pk)
    except DatabaseError:
        logger.exception("Could not keep the record of failed run #%s after a rollback", pk)
    finally:
        connections[using].close()


@atexit.register
def _finish_keeping() -> None:
    """Before the process exits, let every watcher write what it must."""
    for watcher, using in _watchers:
        if watcher.is_alive():
            # A transaction still open now never commits: end it, so the
            # watcher can see it ended (and, on SQLite, write at all).
            connections[using].close()
        watcher.join(_EXIT_WAIT_SECONDS)
