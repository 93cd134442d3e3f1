from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "Link 2 of a chain of run_once commands, each requiring the one before."
    run_once = True
    requires = ["chain_1"]

    def handle(self, *args, **options):
        note("chain_2")
        self.stdout.write("chain_2: done")
