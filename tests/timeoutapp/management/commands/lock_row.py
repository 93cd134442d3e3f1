from contextlib import nullcontext

from django.db import transaction
from django.db.models import F

from managed_commands.base import ManagedBaseCommand
from tests.batchmodels.models import Item

#: The item it updates: a number no batch-loop test uses (they share the table).
ITEM = -14


class Command(ManagedBaseCommand):
    help = "Updates item ITEM (in transaction.atomic() with --atomic); lock_timeout of 1 s."

    lock_timeout = 1

    def add_arguments(self, parser):
        parser.add_argument("--atomic", action="store_true")

    def handle(self, *args, atomic, **options):
        with transaction.atomic() if atomic else nullcontext():
            Item.objects.filter(number=ITEM).update(processed=F("processed") + 1)
        self.stdout.write("lock_row: updated")
