from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "Link 4 of a chain of run_once commands, each requiring the one before."
    run_once = True
    requires = ["chain_3"]

    def handle(self, *args, **options):
        note("chain_4")
        self.stdout.write("chain_4: done")
