"""``manage.py enqueue_command NAME [ARGS...]``: run a managed command on a task worker."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Claim a run of a managed command for a task worker (django.tasks) and enqueue it. "
        "Everything after NAME is the command's own arguments, checked now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue-name", help="The task queue (default: 'default').")
        parser.add_argument("--backend", help="The TASKS backend alias (default: 'default').")
        parser.add_argument("name", help="The managed command, as typed after manage.py.")
        parser.add_argument(
            "arguments",
            nargs=argparse.REMAINDER,
            help="Its arguments and options, as on its own command line.",
        )

    def handle(
        self,
        *,
        name: str,
        arguments: list[str],
        queue_name: str | None,
        backend: str | None,
        **options: Any,
    ) -> None:
        # Imported here: defining the task reads the TASKS setting, so --help never needs it.
        from managed_commands.tasks import enqueue_command

        row = enqueue_command(
            name,
            *arguments,
            queue_name=queue_name,
            backend=backend,
            stdout=self.stdout._out,
            stderr=self.stderr._out,
        )
        if row is not None and options["verbosity"]:
            queue = f" on queue '{queue_name}'" if queue_name else ""
            self.stdout.write(f"Enqueued '{name}' as run #{row.pk} for a task worker{queue}.")
