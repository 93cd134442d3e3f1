from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "Requires the renamed command: met by a success under its old name."
    run_once = True
    requires = ["populate_slugs"]

    def handle(self, *args, **options):
        note("after_populate")
