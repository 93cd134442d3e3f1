from django.core.management.base import BaseCommand
from django.db import transaction

from tests.benchmarks.benchapp import batches
from tests.benchmarks.benchapp.models import BenchRow


class Command(BaseCommand):
    help = "Adds 1 to every row's counter in keyset batches, a hand-written loop, untracked."

    def add_arguments(self, parser):
        batches.add_arguments(parser)

    def handle(self, *args, batch_size, **options):
        rows_of = BenchRow.objects.all()
        last = 0
        while True:
            with transaction.atomic():
                rows = list(rows_of.filter(pk__gt=last).order_by("pk")[:batch_size])
                if not rows:
                    break
                batches.update(rows)
                last = rows[-1].pk
