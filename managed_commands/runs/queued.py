"""A run enqueued for a task worker: the worker takes its queued row, the run adopts it.

``enqueue_command()`` writes the row (status ``queued``, holding the
command's claim) and enqueues a task; the task takes the row with a
conditional update, so a duplicate delivery takes nothing, then runs the
command through ``call_command()`` inside ``adopting()``: the tracked run
uses that row instead of inserting its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone

from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs.claim import host_identity, hostname, own_process_token

# The row the next tracked run of this context adopts; taken by that run, so a
# command it calls in turn claims its own.
_adoptable: ContextVar[CommandExecution | None] = ContextVar("adoptable", default=None)


def start(
    recorder: ExecutionRecorder, row: CommandExecution, worker_id: str, task_id: str
) -> CommandExecution | None:
    """Take queued ``row`` for this worker process; None when it is no longer queued.

    Its ``origin`` gains the worker's id (``"worker"``).
    """
    now = timezone.now()
    return recorder.start_queued(
        row.pk,
        origin={**(row.origin or {}), "worker": worker_id},
        executed_at=now,
        heartbeat_at=now,
        hostname=hostname(),
        pid=os.getpid(),
        process_token=own_process_token(),
        host_id=host_identity(),
        task_id=task_id[:255],
    )


@contextmanager
def adopting(row: CommandExecution) -> Iterator[None]:
    """The next tracked run started in this block runs as ``row`` (already started)."""
    token = _adoptable.set(row)
    try:
        yield
    finally:
        _adoptable.reset(token)


def take_adopted(name: str) -> CommandExecution | None:
    """The started row a run of command ``name`` adopts, if one waits for it (taken once)."""
    row = _adoptable.get()
    if row is None or row.command_name != name:
        return None
    _adoptable.set(None)
    return row
