from managed_commands.base import ManagedBaseCommand
from tests.benchmarks.benchapp import batches
from tests.benchmarks.benchapp.models import BenchRow


class Command(ManagedBaseCommand):
    # Repeatable: a run_once command would skip every run after the first.
    help = "Adds 1 to every row's counter in batches through iterate_batches(), tracked."

    def add_arguments(self, parser):
        batches.add_arguments(parser)

    def handle(self, *args, batch_size, **options):
        for rows in self.iterate_batches(BenchRow.objects.all(), batch_size=batch_size):
            batches.update(rows)
