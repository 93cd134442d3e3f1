from managed_commands.base import ManagedBaseCommand

from ._effects import hold, note


class Command(ManagedBaseCommand):
    help = "A run_once command that notes each time its body runs."
    run_once = True

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=0)
        parser.add_argument("--fail", action="store_true")

    def handle(self, *args, seconds, fail, **options):
        note("once")
        hold(seconds)
        if fail:
            raise RuntimeError("once failed on purpose")
        self.stdout.write("once: done")
