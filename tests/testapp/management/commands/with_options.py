import datetime

from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Takes options of every kind, some of them secret."
    sensitive_options = ["dsn"]

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*")
        parser.add_argument("--password")
        parser.add_argument("--api-key")
        parser.add_argument("--dsn")
        parser.add_argument("--day", type=datetime.date.fromisoformat)
        parser.add_argument("--count", type=int, default=3)

    def handle(self, *args, names, count, **options):
        self.stdout.write(f"names={names} count={count}")
