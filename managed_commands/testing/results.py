"""``CommandResult``: what one run of a command in a test produced.

Its own module, so that the assertions (which read it) and the helpers that
run commands (which fail through the assertions' reports) import it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management.base import CommandError

from managed_commands.models import CommandExecution

__all__ = ["CommandResult"]


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
