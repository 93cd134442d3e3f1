from managed_commands.base import ManagedBaseCommand

from ._effects import note


class Command(ManagedBaseCommand):
    help = "A run_once command that requires another and a schema migration."
    run_once = True
    requires = ["noop_once", "managed_commands.0001_initial"]

    def handle(self, *args, **options):
        note("needs_schema")
        self.stdout.write("needs_schema: done")
