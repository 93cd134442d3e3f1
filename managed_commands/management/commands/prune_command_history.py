"""``manage.py prune_command_history``: delete old runs (never a command's done state),
or the runs of commands whose code is gone."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from managed_commands.formatting import plural
from managed_commands.recorder import ExecutionRecorder, history_recorder
from managed_commands.status import orphans


class Command(BaseCommand):
    help = (
        "Delete the recorded runs that started more than --days days ago (the newest "
        "successful run of every command is always kept, so no done command becomes "
        "pending, and so is the run whose saved cursor an unfinished batch loop resumes "
        "from), or with --orphans every run of the commands that are no longer installed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--days", type=float, help="Delete runs older than this many days.")
        what.add_argument(
            "--orphans",
            action="store_true",
            help="Delete every finished run of the command names that no installed command "
            "has or replaces (see show_managed_commands --orphans), in every scope.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *, days: float | None, orphans: bool, dry_run: bool, **options: Any) -> None:
        recorder = history_recorder()
        if orphans:
            count, what = self._orphans(recorder, dry_run)
        else:
            assert days is not None, "argparse requires --days or --orphans"
            count, what = self._older_than(recorder, days, dry_run)
        if options["verbosity"]:
            verb = "Would delete" if dry_run else "Deleted"
            self.stdout.write(f"{verb} {plural(count, 'run')} {what}.")

    def _older_than(
        self, recorder: ExecutionRecorder, days: float, dry_run: bool
    ) -> tuple[int, str]:
        if days < 0:
            raise CommandError(f"--days must be 0 or more, not {days:g}.")
        runs = recorder.prunable(timezone.now() - datetime.timedelta(days=days))
        count = runs.count() if dry_run else recorder.delete(runs)
        return count, (
            f"older than {days:g} days (the newest successful run of each command is kept)"
        )

    def _orphans(self, recorder: ExecutionRecorder, dry_run: bool) -> tuple[int, str]:
        names = [orphan.name for orphan in orphans(recorder)]
        runs = recorder.finished_runs_of(names)
        count = runs.count() if dry_run else recorder.delete(runs)
        listed = f" ({', '.join(names)})" if names else ""
        return count, f"of {plural(len(names), 'command')} no longer installed{listed}"
