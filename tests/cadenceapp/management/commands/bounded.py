from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import hold


class Command(ManagedBaseCommand):
    help = "A recurring command that should take at most 2 s; runs for --seconds."
    expected_every = 3600
    expected_duration_max = 2

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=0)

    def handle(self, *args, seconds, **options):
        hold(seconds)
