from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "Link 3 of a chain of run_once commands, each requiring the one before."
    run_once = True
    requires = ["chain_2"]

    def handle(self, *args, **options):
        note("chain_3")
        self.stdout.write("chain_3: done")
