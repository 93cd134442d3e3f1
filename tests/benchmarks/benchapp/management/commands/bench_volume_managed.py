from managed_commands.base import ManagedBaseCommand
from tests.benchmarks.benchapp import volume


class Command(ManagedBaseCommand):
    help = "Writes --megabytes MiB through self.stdout and print(), tracked."

    def add_arguments(self, parser):
        volume.add_arguments(parser)

    def handle(self, *args, megabytes, **options):
        volume.write(self, megabytes)
