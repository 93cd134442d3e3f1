"""Assertions about managed command runs, whose failure messages show the history.

Each takes a ``CommandResult`` (from ``run_command()`` or the
``run_managed_command`` fixture), a run's ``CommandExecution`` row or a command
name, and on failure raises ``AssertionError`` with what the run printed and
the command's runs in a table; ``CommandResult`` is what one run of a command in
a test produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError

from managed_commands.conf import current_scope
from managed_commands.exceptions import RequirementNotMet
from managed_commands.formatting import local_time
from managed_commands.loader import discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import history_recorder

__all__ = [
    "CommandResult",
    "assert_cursor",
    "assert_failed",
    "assert_history",
    "assert_ran_once",
    "assert_refused",
    "assert_resumed",
    "assert_skipped",
    "assert_succeeded",
    "format_history",
    "history",
]
Status = CommandExecution.Status
_COLUMNS = ("#", "status", "success", "started", "duration", "error")

#: ``assert_cursor()``: a saved value not checked.
_UNCHECKED: Any = object()


def history(name: str) -> list[CommandExecution]:
    """Return the runs of ``name`` in the current scope, oldest first."""
    recorder = history_recorder()
    return list(reversed(recorder.history(name, current_scope())))


def format_history(name: str) -> str:
    """Render the runs of ``name`` as a table, oldest first."""
    rows = history(name)
    if not rows:
        return f"History of '{name}': no runs recorded."
    table = [_COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in table
    ]
    return f"History of '{name}' (oldest first):\n" + "\n".join(line.rstrip() for line in lines)


def assert_succeeded(result: CommandResult) -> CommandExecution:
    """Assert the run happened and succeeded; return its row."""
    execution = result.execution
    if result.exit_code != 0 or execution is None or execution.status != Status.SUCCEEDED:
        _fail(result, "expected the run to succeed")
    assert execution is not None  # for type checkers: _fail() raised otherwise
    return execution


def assert_failed(result: CommandResult, error: str = "") -> CommandExecution:
    """Assert the run happened and was recorded as failed; return its row.

    Args:
        result: The run.
        error: Text the recorded ``error_message`` must contain (for example
            ``"CommandError: the API is unreachable"``).
    """
    execution = result.execution
    if execution is None or execution.status != Status.FAILED or result.exit_code == 0:
        _fail(result, "expected the run to be recorded as failed")
    assert execution is not None
    if error not in execution.error_message:
        _fail(result, f"expected its error message to contain {error!r}")
    return execution


def assert_skipped(result: CommandResult) -> None:
    """Assert a run_once command was skipped because it already succeeded."""
    if (
        result.exit_code != 0
        or result.execution is not None
        or not result.stdout.startswith(f"Skipped '{result.name}': ")
    ):
        _fail(result, "expected the run to be skipped as already done")


def assert_refused(result: CommandResult, missing: Iterable[str]) -> None:
    """Assert the run was refused because exactly the commands in ``missing`` never succeeded.

    Every requirement in ``missing`` must be named by the ``RequirementNotMet``
    error, and no other required command.
    """
    missing = list(missing)
    if not isinstance(result.error, RequirementNotMet) or result.execution is not None:
        _fail(result, f"expected the run to be refused for missing {missing}")
    message = str(result.error)
    required = _required_commands(result.name)
    unexpected = [name for name in required if name not in missing and f"'{name}'" in message]
    absent = [name for name in missing if f"'{name}'" not in message]
    if absent or unexpected:
        _fail(
            result,
            f"expected the refusal to name exactly {missing}: "
            f"not named {absent}, named but not expected {unexpected}",
            names=[result.name, *missing, *unexpected],
        )


def assert_ran_once(name: str) -> CommandExecution:
    """Assert ``name`` has exactly one successful run (faked runs not counted); return it."""
    runs = [row for row in history(name) if row.status == Status.SUCCEEDED]
    if len(runs) != 1:
        raise AssertionError(
            f"Expected '{name}' to have run successfully once, "
            f"found {len(runs)} successful runs.\n{format_history(name)}"
        )
    return runs[0]


def assert_history(name: str, statuses: Sequence[str]) -> None:
    """Assert the statuses of the runs of ``name``, oldest first.

    Example: ``assert_history("sync_supplier", ["failed", "succeeded"])``.
    """
    found = [row.status for row in history(name)]
    if found != list(statuses):
        raise AssertionError(
            f"Expected the runs of '{name}' to be {list(statuses)}, found {found}.\n"
            f"{format_history(name)}"
        )


def assert_resumed(
    run: CommandResult | CommandExecution, from_: CommandExecution
) -> CommandExecution:
    """Assert the run continued from the cursor saved by ``from_``; return its row.

    Args:
        run: The resumed run: its ``CommandResult`` or its row.
        from_: The earlier run that did not finish (for example the row
            ``run_interrupted()`` returned).

    Example::

        first = run_interrupted("backfill_prices", after_batches=2)
        assert_resumed(run_managed_command("backfill_prices"), from_=first)
    """
    expected = f"expected the run to resume run #{from_.pk}"
    execution = _execution(run, expected)
    resumed = execution.resumed_from_id
    if resumed != from_.pk:
        found = (
            f"it resumed run #{resumed}"
            if resumed is not None
            else "it resumed no run (only a run_once command, or one with resume = True, "
            "resumes, and not with --restart)"
        )
        _fail_run(run, f"{expected}, but {found}")
    return execution


def assert_cursor(
    run: CommandResult | CommandExecution,
    step: str = "main",
    *,
    after: Sequence[Any] | None = _UNCHECKED,
    count: int | None = None,
    done: bool | None = None,
) -> dict[str, Any]:
    """Assert the run saved a cursor for its loop ``step``; return that step's state.

    Args:
        run: The run: its ``CommandResult`` or its row.
        step: The ``step=`` of the loop, ``"main"`` for a loop without one.
        after: The cursor values of the last row done (``[42]`` when paging by
            ``pk``; None when no row was done); not checked when not given.
        count: How many rows the step has done, over the runs it resumed.
        done: Whether the step finished.

    Example::

        assert_cursor(run_interrupted("backfill_prices"), count=500, done=False)
    """
    expected = f"expected the run to save a cursor for its step {step!r}"
    execution = _execution(run, expected)
    steps = execution.cursor or {}
    if step not in steps:
        _fail_run(run, f"{expected}; its cursor is {steps}")
    state: dict[str, Any] = steps[step]
    checked: dict[str, Any] = {}
    if after is not _UNCHECKED:
        checked["after"] = None if after is None else list(after)
    if count is not None:
        checked["count"] = count
    if done is not None:
        checked["done"] = done
    found = {key: state.get(key) for key in checked}
    if found != checked:
        _fail_run(run, f"expected the cursor of its step {step!r} to have {checked}, found {state}")
    return state


def _execution(run: CommandResult | CommandExecution, expected: str) -> CommandExecution:
    """The row of ``run``; fail when it wrote none (skipped or refused)."""
    if isinstance(run, CommandExecution):
        return run
    if run.execution is None:
        _fail(run, expected)
    assert run.execution is not None  # for type checkers: _fail() raised otherwise
    return run.execution


def _fail_run(run: CommandResult | CommandExecution, expected: str) -> None:
    if isinstance(run, CommandResult):
        _fail(run, expected)
    else:
        raise AssertionError(
            f"Run #{run.pk} of '{run.command_name}' ({run.status}): {expected}.\n"
            f"{format_history(run.command_name)}"
        )


def _required_commands(name: str) -> tuple[str, ...]:
    command = discover().commands.get(name)
    return command.command_requires if command is not None else ()


def _fail(result: CommandResult, expected: str, names: Sequence[str] = ()) -> None:
    row = result.execution
    written = f"run #{row.pk} {row.status}" if row is not None else "no run recorded"
    parts = [
        f"Running '{result.name}': {expected}; got exit code {result.exit_code}, {written}.",
        _block("stdout", result.stdout),
        _block("stderr", result.stderr),
    ]
    parts.extend(format_history(each) for each in dict.fromkeys(names or [result.name]) if each)
    raise AssertionError("\n".join(parts))


def _block(label: str, text: str) -> str:
    if not text:
        return f"{label}: (empty)"
    return f"{label}:\n" + "".join(f"  | {line}\n" for line in text.splitlines()).rstrip("\n")


def _cells(row: CommandExecution) -> tuple[str, ...]:
    duration = "" if row.duration is None else f"{row.duration:.3f}s"
    error = row.error_message.splitlines()[0] if row.error_message else ""
    flags = " (forced)" if row.forced else ""
    if row.resumed_from_id is not None:
        flags += f" (resumes #{row.resumed_from_id})"
    return (
        str(row.pk),
        f"{row.status}{flags}",
        "yes" if row.success else "no",
        local_time(row.executed_at),
        duration,
        error[:80],
    )


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
