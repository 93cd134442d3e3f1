from django.core.management.base import CommandError

from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Fails: with CommandError (and --code), or with --crash a ValueError."

    def add_arguments(self, parser):
        parser.add_argument("--code", type=int, default=1)
        parser.add_argument("--crash", action="store_true")

    def handle(self, *args, code, crash, **options):
        self.stdout.write("fail: about to fail")
        if crash:
            raise ValueError("the data is bad")
        raise CommandError("it went wrong", returncode=code)
