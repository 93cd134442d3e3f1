import datetime
import time

from django.db.models import F

from managed_commands.base import ManagedBaseCommand
from tests.batchmodels.models import Item


class Command(ManagedBaseCommand):
    help = (
        "A resumable batch fix for the admin console's tests: adds 1 to each item's "
        "counter (or resets it), sleeping --pause seconds after each batch."
    )
    resume = True
    supports_dry_run = True

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, help="Only the items numbered up to this.")
        parser.add_argument(
            "--mode", choices=["count", "reset"], default="count", help="What to do to each item."
        )
        parser.add_argument("--notify", action="store_true", help="Say so when done.")
        parser.add_argument(
            "--since", type=datetime.date.fromisoformat, help="A day, printed (YYYY-MM-DD)."
        )
        parser.add_argument("--api-token", help="A secret: stored redacted.")
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--pause", type=float, default=0.2, help="Seconds after each batch.")

    def handle(self, *args, limit, mode, notify, since, api_token, batch_size, pause, **options):
        items = Item.objects.all() if limit is None else Item.objects.filter(number__lte=limit)
        value = F("processed") + 1 if mode == "count" else 0
        self.stdout.write(f"mode={mode} since={since} token given={api_token is not None}")
        for number, batch in enumerate(self.iterate_batches(items, batch_size=batch_size), 1):
            Item.objects.filter(pk__in=[item.pk for item in batch]).update(processed=value)
            self.stdout.write(f"batch {number}: {len(batch)} items")
            time.sleep(pause)
        if notify:
            self.stdout.write("console_fix: done")
