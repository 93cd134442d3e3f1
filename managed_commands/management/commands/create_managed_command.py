"""``create_managed_command``: write a new managed command and a passing test for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import ENVIRONMENT_VARIABLE
from django.core.management.base import BaseCommand, CommandParser

from managed_commands import scaffold


class Command(BaseCommand):
    help = (
        "Write <app>/management/commands/<name>.py, a ManagedBaseCommand to fill in, "
        "and a pytest test of it that passes as generated."
    )
    # It only writes files: a project whose checks fail can still use it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", help="Label of the installed app that gets the command.")
        parser.add_argument("command_name", help="Name of the new command, e.g. import_prices.")
        parser.add_argument(
            "--run-once", action="store_true", help="Generate a command that runs only once."
        )
        parser.add_argument(
            "--requires",
            nargs="+",
            action="extend",
            default=[],
            metavar="NAME",
            help="Commands (or app_label.migration) that must have succeeded first.",
        )
        parser.add_argument(
            "--iterate",
            metavar="APP_LABEL.MODEL",
            help="Generate a handle() that loops over this model in batches "
            "(iterate_batches(), resumed after an interruption), and a test that "
            "interrupts it and checks that the next run resumes.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace the generated files if they exist (nothing else), "
            "and allow a name another app already uses.",
        )

    def handle(
        self,
        *args: Any,
        app_label: str,
        command_name: str,
        run_once: bool,
        requires: list[str],
        force: bool,
        iterate: str | None,
        **options: Any,
    ) -> None:
        plan = scaffold.plan(
            app_label,
            command_name,
            run_once=run_once,
            requires=requires,
            force=force,
            iterate=iterate,
        )
        for path in scaffold.write(plan):
            verb = "Overwrote" if path in plan.overwrites else "Created"
            self.stdout.write(f"{verb} {_shown(path)}")
        command_file, test_file = plan.files
        self.stdout.write(
            f"Next: write handle() in {_shown(command_file)}, "
            f"then check it with: pytest {_shown(test_file)}"
        )
        settings_module = os.environ.get(ENVIRONMENT_VARIABLE) or "mysite.settings"
        for line in scaffold.pytest_settings_hint(test_file, settings_module):
            self.stdout.write(line)
        for note in plan.notes:
            self.stderr.write(f"Note: {note}")


def _shown(path: Path) -> str:
    """The path relative to the current directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
