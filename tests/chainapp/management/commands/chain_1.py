from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "Link 1 of a chain of run_once commands, each requiring the one before."
    run_once = True

    def handle(self, *args, **options):
        note("chain_1")
        self.stdout.write("chain_1: done")
