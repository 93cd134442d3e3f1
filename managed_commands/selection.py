"""Which commands a ``--phase`` / ``--tag`` selection picks.

``run_pending_commands`` and ``show_managed_commands`` take the same options
and must agree on what they select: a deploy step runs exactly what the
listing with the same options shows as pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandParser

from managed_commands.definition import PHASES, Definition


@dataclass(frozen=True)
class Selection:
    """A phase (None: both) and tags (empty: any); a command is picked when it matches both.

    Attributes:
        phase: ``"pre_migrate"``, ``"post_migrate"`` or None.
        tags: A command carrying at least one of them is picked; empty picks all.
    """

    phase: str | None = None
    tags: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        """True when neither a phase nor a tag was asked for."""
        return self.phase is None and not self.tags

    def picks(self, command: Definition) -> bool:
        """Whether ``command`` is in the phase and carries one of the tags."""
        in_phase = self.phase is None or command.phase == self.phase
        return in_phase and (not self.tags or bool(self.tags & command.tags))

    def describe(self) -> str:
        """Words naming the selection, such as ``" in phase pre_migrate tagged search"``.

        Empty when everything is selected, so that messages stay as they were.
        """
        words = f" in phase {self.phase}" if self.phase else ""
        if self.tags:
            words += f" tagged {' or '.join(sorted(self.tags))}"
        return words

    def options(self) -> str:
        """The command-line options that select the same, such as ``" --phase pre_migrate"``."""
        phase = f" --phase {self.phase}" if self.phase else ""
        return phase + "".join(f" --tag {tag}" for tag in sorted(self.tags))


#: The selection of a command run without ``--phase`` or ``--tag``.
EVERYTHING = Selection()


def add_arguments(parser: CommandParser, what: str) -> None:
    """Add ``--phase`` and ``--tag`` to ``parser``; ``what`` says what they narrow."""
    parser.add_argument(
        "--phase",
        choices=PHASES,
        help=f"Only {what} of this phase (pre_migrate: before migrate).",
    )
    parser.add_argument(
        "--tag",
        action="append",
        metavar="NAME",
        help=f"Only {what} carrying this tag; repeat it for any of several tags.",
    )


def from_options(options: dict[str, Any]) -> Selection:
    """The selection of a command's parsed options (those ``add_arguments()`` added)."""
    return Selection(options.get("phase"), frozenset(options.get("tag") or ()))
