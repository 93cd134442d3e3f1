"""``manage.py prune_command_history --days N``: delete old runs, never a command's done state."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from managed_commands.formatting import plural
from managed_commands.recorder import history_recorder


class Command(BaseCommand):
    help = (
        "Delete the recorded runs that started more than --days days ago. The newest "
        "successful run of every command is always kept, so no done command becomes pending."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=float, required=True, help="Delete runs older than this many days."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *, days: float, dry_run: bool, **options: Any) -> None:
        if days < 0:
            raise CommandError(f"--days must be 0 or more, not {days:g}.")
        before = timezone.now() - datetime.timedelta(days=days)
        recorder = history_recorder()
        if dry_run:
            count = recorder.prunable(before).count()
            message = f"Would delete {plural(count, 'run')} older than {days:g} days"
        else:
            count = recorder.prune(before)
            message = f"Deleted {plural(count, 'run')} older than {days:g} days"
        if options["verbosity"]:
            self.stdout.write(f"{message} (the newest successful run of each command is kept).")
