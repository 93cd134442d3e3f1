import sys

from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Calls sys.exit(code)."

    def add_arguments(self, parser):
        parser.add_argument("code", type=int)

    def handle(self, *args, code, **options):
        print("exiting")
        sys.exit(code)
