"""Run a managed command in a test and get back what it did."""

from __future__ import annotations

from io import StringIO
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError

from managed_commands.models import CommandExecution
from managed_commands.runs import interrupting_after
from managed_commands.signals import command_started
from managed_commands.testing.assertions import CommandResult, _fail

__all__ = ["CommandResult", "run_command", "run_interrupted"]

#: What ``manage.py`` exits with when a KeyboardInterrupt ends it (the shell shows 130).
_SIGINT_EXIT = -2


def run_command(name: str, *args: Any, **options: Any) -> CommandResult:
    """Run command ``name`` through ``call_command()`` and return a ``CommandResult``.

    A ``CommandError`` is caught and turned into ``exit_code`` and ``stderr``, as
    ``manage.py`` would; any other exception propagates.
    """
    return _run(name, args, options, interrupted=False)


def run_interrupted(
    name: str, *args: Any, after_batches: int = 1, **options: Any
) -> CommandExecution:
    """Run ``name`` and stop it as Ctrl-C would once ``after_batches`` batches committed.

    The batches of its ``iterate()`` / ``iterate_batches()`` loops are counted
    across the run (the last, short or empty, page of a loop counts too). The
    ``KeyboardInterrupt`` is caught; the run's row is returned, ``interrupted``
    with its cursor saved, so that the next run of a run_once command (or one
    with ``resume = True``) continues from it.

    Raises:
        AssertionError: The run was not interrupted: it was skipped or refused,
            failed, or finished before ``after_batches`` batches.
    """
    if not isinstance(after_batches, int) or isinstance(after_batches, bool) or after_batches < 1:
        raise ValueError(f"after_batches must be a whole number >= 1, not {after_batches!r}.")
    with interrupting_after(after_batches):
        result = _run(name, args, options, interrupted=True)
    execution = result.execution
    if execution is None or execution.status != CommandExecution.Status.INTERRUPTED:
        _fail(
            result,
            f"expected the run to be interrupted after {after_batches} "
            f"batch{'es' if after_batches != 1 else ''} of its iterate() loops",
        )
    assert execution is not None  # for type checkers: fail() raised otherwise
    return execution


def _run(
    name: str, args: tuple[Any, ...], options: dict[str, Any], *, interrupted: bool
) -> CommandResult:
    """Run the command; with ``interrupted``, catch the ``KeyboardInterrupt`` that ends it."""
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
    except KeyboardInterrupt:
        if not interrupted:
            raise
        exit_code = _SIGINT_EXIT
    finally:
        command_started.disconnect(remember)
    execution = executions[0] if executions else None
    if execution is not None:
        execution.refresh_from_db()
    return CommandResult(exit_code, stdout.getvalue(), stderr.getvalue(), execution, error, name)
