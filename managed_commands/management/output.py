"""What our own management commands share: progress lines that ``-v0`` silences."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class ReportingCommand(BaseCommand):
    """A ``BaseCommand`` whose ``say()`` lines ``--verbosity 0`` silences.

    Errors and the output asked for (a plan, JSON) are written as usual.
    """

    verbosity = 1

    def execute(self, *args: Any, **options: Any) -> str | None:
        self.verbosity = int(options.get("verbosity", 1))
        return super().execute(*args, **options)

    def say(self, message: str) -> None:
        """Write ``message`` to stdout unless the verbosity is 0."""
        if self.verbosity:
            self.stdout.write(message)
