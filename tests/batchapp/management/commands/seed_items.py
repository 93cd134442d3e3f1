from django.core.management.base import BaseCommand

from tests.batchmodels.models import Item


class Command(BaseCommand):
    help = "Create --count items numbered from 1, none processed yet."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)

    def handle(self, *args, count, **options):
        Item.objects.all().delete()
        chunk = 5000
        for start in range(1, count + 1, chunk):
            numbers = range(start, min(start + chunk, count + 1))
            Item.objects.bulk_create(Item(number=n, group=n % 7) for n in numbers)
