from datetime import timedelta

from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "A recurring command expected every hour (default grace: 6 min); --fail fails it."
    expected_every = timedelta(hours=1)

    def add_arguments(self, parser):
        parser.add_argument("--fail", action="store_true")

    def handle(self, *args, fail, **options):
        for line in range(1, 31):
            self.stdout.write(f"synced batch {line}")
        if fail:
            raise RuntimeError("supplier API answered 503")
