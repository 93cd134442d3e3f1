from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "A run_once backfill under its first name; renamesafter renames it populate_slugs."
    run_once = True

    def handle(self, *args, **options):
        note("fill_slugs")
