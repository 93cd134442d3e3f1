from managed_commands.base import ManagedBaseCommand

from ._effects import hold, note


class Command(ManagedBaseCommand):
    help = "A command that opts out of the overlap lock."
    allow_concurrent = True

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=0)

    def handle(self, *args, seconds, **options):
        note("concurrent")
        hold(seconds)
