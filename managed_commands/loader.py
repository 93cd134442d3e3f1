"""Find the managed commands among the installed apps' management commands.

Modules are imported (never run) once per process; Django's own commands are
skipped since none of them is managed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.core.management import get_commands

from managed_commands import definition
from managed_commands.base import ManagedBaseCommand
from managed_commands.graph import RequirementGraph


@dataclass(frozen=True)
class ManagedCommand:
    """A discovered managed command."""

    name: str
    app_name: str
    command_class: type[ManagedBaseCommand]

    @property
    def app_label(self) -> str:
        return definition.app_label(self.command_class)

    @property
    def run_once(self) -> bool:
        return self.command_class.run_once is True

    @property
    def requires(self) -> tuple[str, ...]:
        requires = self.command_class.requires
        return tuple(requires) if not isinstance(requires, str) else (requires,)

    @property
    def source_file(self) -> str:
        return definition.source_file(self.command_class.__module__)

    @property
    def spec(self) -> definition.Definition:
        """The validated definition; raises ``InvalidDefinition`` when it has problems."""
        return definition.read(self.command_class)

    def current_source_hash(self) -> str:
        """Hash of the source file as it is on disk now."""
        return definition.hash_file(self.source_file)


@dataclass(frozen=True)
class Discovery:
    """Every managed command by name, plus the command modules that failed to import."""

    commands: dict[str, ManagedCommand]
    broken: dict[str, str]


@lru_cache(maxsize=1)
def discover() -> Discovery:
    """Import every installed app's commands (not Django's) and keep the managed ones.

    Cached per process; call ``discover.cache_clear()`` after changing apps.
    """
    commands: dict[str, ManagedCommand] = {}
    broken: dict[str, str] = {}
    for name, app_name in sorted(get_commands().items()):
        if not isinstance(app_name, str) or app_name.startswith("django."):
            continue
        try:
            module = importlib.import_module(f"{app_name}.management.commands.{name}")
        except Exception as exc:  # noqa: BLE001 - reported by the system checks
            broken[name] = f"{type(exc).__name__}: {exc}"
            continue
        command_class = getattr(module, "Command", None)
        if isinstance(command_class, type) and issubclass(command_class, ManagedBaseCommand):
            commands[name] = ManagedCommand(name, app_name, command_class)
    return Discovery(commands, broken)


def requirement_graph(commands: Iterable[ManagedCommand]) -> RequirementGraph:
    """The ``requires`` graph between ``commands``, ordered by INSTALLED_APPS then name.

    Raises ``InvalidDefinition`` when a command's attributes have problems.
    """
    app_order = {config.label: index for index, config in enumerate(apps.get_app_configs())}
    graph = RequirementGraph()
    for command in commands:
        graph.add_node(command.name, app_order.get(command.app_label, len(app_order)))
        for requirement in command.spec.command_requires:
            graph.add_dependency(command.name, requirement)
    return graph


def forget_discovery(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: discover again once INSTALLED_APPS changes."""
    if setting == "INSTALLED_APPS":
        discover.cache_clear()
