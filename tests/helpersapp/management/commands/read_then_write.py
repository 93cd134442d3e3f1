import time

from django.contrib.auth.models import Group
from django.db import transaction

from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import hold


class Command(ManagedBaseCommand):
    help = "Loops over atomic() blocks that read, then write, for --seconds."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=60)

    def handle(self, *args, seconds, **options):
        hold(0)
        deadline = time.monotonic() + seconds
        blocks = 0
        while time.monotonic() < deadline:
            with transaction.atomic():
                # The read takes SQLite's shared lock; the write then needs the
                # write lock, which SQLite refuses at once if another
                # connection wrote in between.
                count = Group.objects.count()
                Group.objects.create(name=f"block {blocks} after {count}")
            Group.objects.all().delete()
            blocks += 1
        self.stdout.write(f"read_then_write: {blocks} blocks")
