"""Manual API, for commands that do not subclass ``ManagedBaseCommand``.

Compatible with ``django_managed_commands``: same names, arguments and meaning.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from managed_commands.conf import current_scope
from managed_commands.models import CommandExecution
from managed_commands.origin import hostname, origin
from managed_commands.recorder import history_recorder
from managed_commands.runs import clean_text, clip_name, to_json

__all__ = ["get_command_history", "record_command_execution", "should_run_command"]


def record_command_execution(
    command_name: str,
    success: bool = True,
    parameters: dict[str, Any] | None = None,
    output: str = "",
    error_message: str = "",
    duration: float | None = None,
    run_once: bool = False,
) -> CommandExecution:
    """Record a finished run of ``command_name`` and return its row.

    Args:
        command_name: The name typed after ``manage.py``.
        success: Whether the run succeeded.
        parameters: Its arguments; values JSON cannot hold are stored as text.
        output: What it printed.
        error_message: Why it failed.
        duration: How long it took, in seconds.
        run_once: Whether the command is meant to run once.
    """
    recorder = history_recorder()
    finished = timezone.now()
    return recorder.record(
        command_name=clip_name(command_name),
        scope=current_scope(),
        status=CommandExecution.Status.SUCCEEDED if success else CommandExecution.Status.FAILED,
        parameters=to_json(parameters or {}),
        output=clean_text(output),
        error_message=clean_text(error_message),
        duration=duration,
        run_once=run_once,
        origin=origin(),
        executed_at=finished - datetime.timedelta(seconds=duration or 0),
        finished_at=finished,
        hostname=hostname(),
    )


def should_run_command(command_name: str) -> bool:
    """Return False only when the newest run is a success of a run_once command.

    This is django-managed-commands' documented meaning, kept for code written
    against it; it is not this app's "done" (a success holding the command's
    ``once_key``, ``ExecutionRecorder.done()``), which a start, the status view
    and ``run_pending_commands`` go by: after a forced rerun that failed, say,
    this returns True while the command stays done.
    """
    recorder = history_recorder()
    newest = recorder.history(clip_name(command_name), current_scope()).first()
    return not (newest and newest.success and newest.run_once)


def get_command_history(command_name: str, limit: int = 10) -> QuerySet[CommandExecution]:
    """Return the newest ``limit`` runs of ``command_name``, newest first."""
    recorder = history_recorder()
    return recorder.history(clip_name(command_name), current_scope())[:limit]
