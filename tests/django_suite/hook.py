"""An import hook: the command modules of Django's ``user_commands`` test app subclass
``ManagedBaseCommand`` where they say ``BaseCommand``.

Each module is executed with ``django.core.management.BaseCommand`` and
``django.core.management.base.BaseCommand`` bound to ``ManagedBaseCommand``, then
both are restored; its ``Command`` must then be a ``ManagedBaseCommand``, or the
import fails. Each module made managed is written to the report file, with the
``managed_commands`` it was made with.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

PACKAGE = "user_commands.management.commands."
#: The file (JSON lines) that every process of the run appends what it saw to.
REPORT = "MC_DJANGO_SUITE_REPORT"


def report(**event: object) -> None:
    path = os.environ.get(REPORT)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps({**event, "pid": os.getpid()}) + "\n")


@contextmanager
def base_command_is_managed() -> Iterator[type]:
    import django.core.management
    import django.core.management.base

    from managed_commands.base import ManagedBaseCommand

    plain = django.core.management.base.BaseCommand
    django.core.management.BaseCommand = ManagedBaseCommand
    django.core.management.base.BaseCommand = ManagedBaseCommand
    try:
        yield ManagedBaseCommand
    finally:
        django.core.management.BaseCommand = plain
        django.core.management.base.BaseCommand = plain


class ManagedCommandLoader(importlib.machinery.SourceFileLoader):
    def exec_module(self, module: ModuleType) -> None:
        with base_command_is_managed() as managed:
            super().exec_module(module)
        command = getattr(module, "Command", None)
        if not (isinstance(command, type) and issubclass(command, managed)):
            raise ImportError(f"{module.__name__}.Command is not a ManagedBaseCommand")
        report(
            event="managed",
            module=module.__name__,
            library=sys.modules["managed_commands"].__file__,
        )


class ManagedCommandFinder(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if not fullname.startswith(PACKAGE):
            return None
        spec = super().find_spec(fullname, path, target)
        if spec is None:
            return None
        if type(spec.loader) is not importlib.machinery.SourceFileLoader:
            raise ImportError(f"{fullname}: cannot make a command loaded by {spec.loader} managed")
        spec.loader = ManagedCommandLoader(fullname, spec.loader.path)
        return spec


def install() -> None:
    if ManagedCommandFinder not in sys.meta_path:
        sys.meta_path.insert(0, ManagedCommandFinder)
