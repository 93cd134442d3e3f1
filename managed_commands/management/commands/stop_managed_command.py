"""``manage.py stop_managed_command NAME``: ask a running batch loop to stop after its batch."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from managed_commands.conf import current_scope
from managed_commands.recorder import history_recorder
from managed_commands.runs import ask_to_stop


class Command(BaseCommand):
    help = (
        "Ask the running run of a managed command to stop. Its iterate() loop stops after "
        "the batch in progress, saves its cursor and ends 'interrupted'; the next start "
        "resumes from there (run_once commands, or resume = True)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The command's name, as typed after manage.py.")
        parser.add_argument(
            "--scope",
            help="The scope (tenant schema) of the run to stop; the current one by default.",
        )

    def handle(self, *, name: str, scope: str | None, **options: Any) -> None:
        scope = current_scope() if scope is None else scope
        recorder = history_recorder()
        running = recorder.running_runs(name, scope)
        ask_to_stop(recorder, running)
        ids = [pk for pk, _ in running]
        where = f" in scope '{scope}'" if scope else ""
        if not ids:
            raise CommandError(f"No run of '{name}' is running{where}: there is nothing to stop.")
        if options["verbosity"]:
            runs = ", ".join(f"#{pk}" for pk in ids)
            self.stdout.write(
                f"Asked {runs} of '{name}'{where} to stop. A loop over iterate() stops after "
                f"its current batch, with its cursor saved; a command without one runs to its end."
            )
