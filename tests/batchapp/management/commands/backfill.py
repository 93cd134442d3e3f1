import os
import time
from pathlib import Path

from django.db.models import F

from managed_commands.base import ManagedBaseCommand
from tests.batchmodels.models import Item


class Command(ManagedBaseCommand):
    help = "A run_once batch loop adding 1 to each item's counter, --pause seconds per batch."
    run_once = True
    supports_dry_run = True

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--pause", type=float, default=0)
        parser.add_argument(
            "--hold-at",
            type=int,
            default=0,
            help="Stay inside batch N (from 1) after its update, until the file named by "
            "MC_TEST_RELEASE exists (10 minutes without one).",
        )

        parser.add_argument(
            "--before-loop",
            choices=["crash", "hold"],
            help="End the run before its first batch, as a setup step would: raise, or "
            "write MC_TEST_STARTED and hold (to be killed) as --hold-at does.",
        )

    def handle(self, *args, batch_size, pause, hold_at, before_loop, **options):
        started = os.environ.get("MC_TEST_STARTED")
        if before_loop == "crash":
            raise RuntimeError("setup crashed before the loop")
        if before_loop == "hold" and started:
            Path(started).write_text(str(os.getpid()))
            hold()
        batches = self.iterate_batches(Item.objects.all(), batch_size=batch_size)
        for number, batch in enumerate(batches, start=1):
            Item.objects.filter(pk__in=[item.pk for item in batch]).update(
                processed=F("processed") + 1
            )
            # MC_TEST_STARTED tells the test where the loop is: after the first
            # batch's update, or inside batch --hold-at, which never commits.
            if started and (number == hold_at or (not hold_at and number == 1)):
                Path(started).write_text(str(os.getpid()))
            if number == hold_at:
                hold()
            time.sleep(pause)
        self.stdout.write("backfill: done")


def hold() -> None:
    release = os.environ.get("MC_TEST_RELEASE")
    deadline = time.monotonic() + 600
    while not (release and os.path.exists(release)) and time.monotonic() < deadline:
        time.sleep(0.02)
