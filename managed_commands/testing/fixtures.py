"""pytest plugin of managed_commands, loaded through the ``pytest11`` entry point.

pytest loads it in every project where the package is installed, even one
without Django settings or factory-boy, so it imports neither at import time:
everything Django or factory-boy is imported inside the fixtures.

Fixtures:
    run_managed_command: ``run_managed_command(name, *args, **options)`` runs a
        command through ``call_command()`` and returns its ``CommandResult``.
    command_history: writes the history a test starts from, e.g.
        ``command_history.succeeded("load_catalog")``.

Both use pytest-django's ``db`` fixture, so the rows a test writes, and those
its runs write, are rolled back with the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from managed_commands.models import CommandExecution
    from managed_commands.testing.utils import CommandResult

__all__ = ["CommandHistory", "command_history", "run_managed_command"]


class CommandHistory:
    """Writes the runs a test starts from, in the current scope of the history database.

    ``run_once`` and ``app_label`` default to what the installed command
    declares; any other ``CommandExecution`` field can be passed as a keyword.
    """

    def succeeded(self, name: str, **fields: Any) -> CommandExecution:
        """Record a successful run of ``name``: it counts as done and as a met requirement."""
        return self._create(name, fields)

    def failed(self, name: str, **fields: Any) -> CommandExecution:
        """Record a failed run of ``name``."""
        return self._create(name, fields, failed=True)

    def running(self, name: str, *, holding_lock: bool = False, **fields: Any) -> CommandExecution:
        """Record a run of ``name`` still in progress in this process.

        With ``holding_lock=True`` it also holds the command's lock, so a new run
        waits for it and gives up after ``MANAGED_COMMANDS["WAIT_TIMEOUT"]`` seconds.
        """
        return self._create(name, fields, running=True, holding_lock=holding_lock)

    def faked(self, name: str, **fields: Any) -> CommandExecution:
        """Record ``name`` as marked done without running."""
        return self._create(name, fields, faked=True)

    def resumable(
        self, name: str, *, rows_done: int = 100, rows_total: int = 200, **fields: Any
    ) -> CommandExecution:
        """Record a run of ``name`` interrupted in its batch loop with its cursor saved.

        Its ``iterate()`` loop (step ``"main"``, paging by pk) got past pk
        ``rows_done``: the next run of a run_once command, or of one with
        ``resume = True``, continues after it.
        """
        return self._create(
            name, {"rows_done": rows_done, "rows_total": rows_total, **fields}, resumable=True
        )

    def _create(self, name: str, fields: dict[str, Any], **traits: bool) -> CommandExecution:
        from managed_commands.testing.factories import CommandExecutionFactory  # needs factory-boy

        values = {**_declared(name), **traits, **fields}
        row: CommandExecution = CommandExecutionFactory.create(command_name=name, **values)
        return row


def _declared(name: str) -> dict[str, Any]:
    """``run_once`` and ``app_label`` of the installed managed command ``name``, if any."""
    from managed_commands.loader import discover  # imports Django

    command = discover().commands.get(name)
    if command is None:
        return {}
    return {"run_once": command.run_once, "app_label": command.app_label}


@pytest.fixture
def run_managed_command(db: None) -> Callable[..., CommandResult]:
    """Return ``run_command``: run a command and get its ``CommandResult``."""
    from managed_commands.testing.utils import run_command  # imports Django

    return run_command


@pytest.fixture
def command_history(db: None) -> CommandHistory:
    """Return a ``CommandHistory`` to write the runs a test starts from."""
    return CommandHistory()
