"""The work shared by the plain and the managed batch-loop benchmark commands."""

from django.db.models import F

from tests.benchmarks.benchapp.models import BenchRow

BATCH_SIZE = 1000


def add_arguments(parser):
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)


def update(rows):
    """Add 1 to the counter of ``rows``: one UPDATE for the whole batch."""
    BenchRow.objects.filter(pk__in=[row.pk for row in rows]).update(counter=F("counter") + 1)
