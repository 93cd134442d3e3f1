"""Run a managed command in a test and get back what it did."""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError

from managed_commands.models import CommandExecution
from managed_commands.signals import command_started

__all__ = ["CommandResult", "run_command"]


@dataclass
class CommandResult:
    """What one ``run_command()`` call produced.

    Attributes:
        exit_code: What ``manage.py`` would have exited with.
        stdout: Everything written to stdout.
        stderr: Everything written to stderr, plus the message of a ``CommandError``.
        execution: The row this run wrote, or None when it was skipped or refused.
        error: The ``CommandError`` raised, if any.
        name: The command that was run.
    """

    exit_code: int
    stdout: str
    stderr: str
    execution: CommandExecution | None
    error: CommandError | None = None
    name: str = ""


def run_command(name: str, *args: Any, **options: Any) -> CommandResult:
    """Run command ``name`` through ``call_command()`` and return a ``CommandResult``.

    A ``CommandError`` is caught and turned into ``exit_code`` and ``stderr``, as
    ``manage.py`` would; any other exception propagates.
    """
    stdout, stderr = StringIO(), StringIO()
    executions: list[CommandExecution] = []

    def remember(execution: CommandExecution, **kwargs: Any) -> None:
        executions.append(execution)

    command_started.connect(remember, weak=False)
    error = None
    try:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
        exit_code = 0
    except CommandError as exc:
        error = exc
        exit_code = exc.returncode
        stderr.write(f"{type(exc).__name__}: {exc}\n")
    finally:
        command_started.disconnect(remember)
    execution = executions[0] if executions else None
    if execution is not None:
        execution.refresh_from_db()
    return CommandResult(exit_code, stdout.getvalue(), stderr.getvalue(), execution, error, name)
