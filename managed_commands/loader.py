"""Find the managed commands among the installed apps' management commands.

Modules are imported (never run) once per process; Django's own commands are
skipped since none of them is managed. Each managed command's definition is
read and validated here, once: every other module reads ``discover()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from django.apps import apps
from django.core.management import get_commands

from managed_commands import definition
from managed_commands.base import ManagedBaseCommand
from managed_commands.definition import Definition, Problem
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

    Cached per process; call ``discover.cache_clear()`` after changing apps.
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


def forget_discovery(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: discover again once INSTALLED_APPS changes."""
    if setting == "INSTALLED_APPS":
        discover.cache_clear()
