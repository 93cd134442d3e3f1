from managed_commands.base import ManagedBaseCommand

from ._effects import note


class Command(ManagedBaseCommand):
    help = "Requires 'once'."
    run_once = True
    requires = ["once", "noop_once"]

    def handle(self, *args, **options):
        note("needs_once")
        self.stdout.write("needs_once: done")
