import os
import time
from pathlib import Path

from django.db.models import F

from managed_commands.base import ManagedBaseCommand
from tests.batchmodels.models import Item


class Command(ManagedBaseCommand):
    help = "A run_once batch loop adding 1 to each item's counter, --pause seconds per batch."
    run_once = True

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--pause", type=float, default=0)

    def handle(self, *args, batch_size, pause, **options):
        started = os.environ.get("MC_TEST_STARTED")
        for batch in self.iterate_batches(Item.objects.all(), batch_size=batch_size):
            Item.objects.filter(pk__in=[item.pk for item in batch]).update(
                processed=F("processed") + 1
            )
            if started and not os.path.exists(started):
                Path(started).write_text(str(os.getpid()))
            # Inside the batch's transaction: a kill here lands mid-batch.
            time.sleep(pause)
        self.stdout.write("backfill: done")
