"""Find the managed commands among the installed apps' management commands.

Modules are imported (never run) once per process; Django's own commands are
skipped since none of them is managed. Each managed command's definition is
read and validated here, once: every other module reads ``discover()``.

A selection (``--phase``, ``--tag``) picks among them: ``run_pending_commands`` and
``show_managed_commands`` take the same options and must agree on what they select,
so a deploy step runs exactly what the listing with the same options shows as pending."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from django.apps import apps
from django.core.management import get_commands
from django.core.management.base import CommandParser

from managed_commands import definition
from managed_commands.base import ManagedBaseCommand
from managed_commands.definition import PHASES, Definition, Problem
from managed_commands.exceptions import InvalidDefinition
from managed_commands.graph import RequirementGraph


@dataclass(frozen=True)
class Discovery:
    """What the installed apps' command modules hold, each kind kept apart.

    Attributes:
        commands: Every managed command with a valid definition, by name.
        invalid: The managed commands whose definition has problems, by name.
        broken: The command modules that failed to import: name -> the error.
    """

    commands: dict[str, Definition]
    invalid: dict[str, tuple[Problem, ...]]
    broken: dict[str, str]

    @cached_property
    def graph(self) -> RequirementGraph:
        """The ``requires`` graph between the valid commands, built once per discovery.

        Shared by every executor of the process (one per tenant in a deploy
        across tenants): read it, never change it.
        """
        return requirement_graph(self.commands.values())

    def ensure_valid(self) -> None:
        """Raise ``InvalidDefinition`` listing every problem of every invalid command."""
        if self.invalid:
            raise InvalidDefinition(
                " ".join(p.message for found in self.invalid.values() for p in found)
            )


@lru_cache(maxsize=1)
def discover() -> Discovery:
    """Import every installed app's commands (not Django's) and read the managed ones.

    Cached per process; call ``discover.cache_clear()`` after changing apps, or
    ``forget_changed_commands()`` to notice a command file added since.
    """
    commands: dict[str, Definition] = {}
    invalid: dict[str, tuple[Problem, ...]] = {}
    broken: dict[str, str] = {}
    for name, app_name in sorted(get_commands().items()):
        if not isinstance(app_name, str) or app_name.startswith("django."):
            continue
        try:
            command_class = definition.command_class_of(app_name, name)
        except Exception as exc:  # noqa: BLE001 - reported by the system checks
            broken[name] = f"{type(exc).__name__}: {exc}"
            continue
        if not (isinstance(command_class, type) and issubclass(command_class, ManagedBaseCommand)):
            continue
        problems = definition.problems(command_class)
        if problems:
            invalid[name] = tuple(problems)
        else:
            commands[name] = definition.read(command_class)
    return Discovery(commands, invalid, broken)


def requirement_graph(commands: Iterable[Definition]) -> RequirementGraph:
    """The ``requires`` graph between ``commands``, ordered by INSTALLED_APPS then name."""
    app_order = {config.label: index for index, config in enumerate(apps.get_app_configs())}
    graph = RequirementGraph()
    for command in commands:
        graph.add_node(command.name, app_order.get(command.app_label, len(app_order)))
        for requirement in command.command_requires:
            graph.add_dependency(command.name, requirement)
    return graph


def forget_changed_commands() -> None:
    """Forget the discovery, and Django's list of commands, when a file was added to,
    removed from or renamed in an installed app's ``management/commands`` folder since
    the last call: a long-running server (``runserver``, a WSGI worker) calls it per
    request, and lists a new command without a restart. Costs one ``stat()`` per app.
    """
    _forget_for(_command_folders())


@lru_cache(maxsize=1)
def _forget_for(folders: tuple[tuple[str, int | None], ...]) -> None:
    # The cache makes this run once per new state of the folders.
    get_commands.cache_clear()  # type: ignore[attr-defined]
    discover.cache_clear()


def _command_folders() -> tuple[tuple[str, int | None], ...]:
    """Each installed app's commands folder and its modification time (None: none)."""
    folders = (
        os.path.join(config.path, "management", "commands")
        for config in apps.get_app_configs()
        if not config.name.startswith("django.")
    )
    return tuple((folder, _modified(folder)) for folder in folders)


def _modified(folder: str) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:  # an app without commands
        return None


def forget_discovery(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: discover again once INSTALLED_APPS changes."""
    if setting == "INSTALLED_APPS":
        discover.cache_clear()


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
