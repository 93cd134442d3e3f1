"""Orphans: commands whose runs are recorded but whose code is gone.

A command deleted, or renamed without ``replaces``, leaves its history
behind. ``show_managed_commands --orphans`` lists those names and
``prune_command_history --orphans`` deletes their runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management import get_commands

from managed_commands.loader import discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder

__all__ = ["Orphan", "orphans"]


@dataclass(frozen=True)
class Orphan:
    """A command name with recorded runs and no code.

    Attributes:
        name: The name its runs were recorded under.
        runs: How many runs it has, in every scope.
        last_run: Its newest run, in any scope.
    """

    name: str
    runs: int
    last_run: CommandExecution


def orphans(recorder: ExecutionRecorder) -> list[Orphan]:
    """The command names with history that no installed command has or replaces.

    Any installed command counts as code, managed or not (one that stopped
    being managed keeps its history), and so does every name in a managed
    command's ``replaces`` (its history is that command's). One aggregate
    over the history, then one read per orphan.
    """
    known = set(get_commands())
    for command in discover().commands.values():
        known.update(command.replaced_names)
    return [
        Orphan(name, runs, recorder.history(name)[0])
        for name, runs in recorder.recorded_names(leaving_out=known).items()
    ]
