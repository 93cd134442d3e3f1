"""``manage.py show_managed_commands``: what ``showmigrations`` is for migrations."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from managed_commands import listing
from managed_commands.status import PENDING, CommandStatus, command_statuses


class Command(BaseCommand):
    help = (
        "List the managed commands by app: [X] done, [ ] pending, [F] failed last time, "
        "[R] running now, [-] repeatable; with their requires, last run and changed source."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pending", action="store_true", help="Only the pending run_once commands."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when any run_once command is pending (a deploy or CI gate).",
        )
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--json", action="store_true", dest="as_json", help="Print a JSON list of objects."
        )
        output.add_argument(
            "--graph",
            action="store_true",
            help="Print the requires graph of every command as Mermaid text.",
        )

    def handle(
        self, *, pending: bool, check: bool, as_json: bool, graph: bool, **options: Any
    ) -> None:
        everything = command_statuses()
        waiting = [s for s in everything if s.state == PENDING]
        statuses = waiting if pending else everything
        if graph:  # the whole graph: a pending command's requirements may be done
            self.stdout.write(listing.mermaid(everything))
        elif as_json:
            self.stdout.write(json.dumps([listing.as_json(s) for s in statuses], indent=2))
        elif options["verbosity"]:
            self._print(statuses, pending)
        if check and waiting:
            raise CommandError(
                f"{len(waiting)} run_once command{'s are' if len(waiting) > 1 else ' is'} "
                f"pending: {', '.join(s.command.name for s in waiting)}. "
                f"Run them with 'python manage.py run_pending_commands'."
            )

    def _print(self, statuses: list[CommandStatus], pending: bool) -> None:
        if not statuses:
            self.stdout.write(
                "No pending run_once commands." if pending else "No managed commands."
            )
        for app_label, lines in listing.by_app(statuses):
            self.stdout.write(self.style.MIGRATE_LABEL(app_label))
            for line in lines:
                self.stdout.write(line)
