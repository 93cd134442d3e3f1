from django.core.management.base import BaseCommand

from tests.benchmarks.benchapp import volume


class Command(BaseCommand):
    help = "Writes --megabytes MiB through self.stdout and print(), untracked."

    def add_arguments(self, parser):
        volume.add_arguments(parser)

    def handle(self, *args, megabytes, **options):
        volume.write(self, megabytes)
