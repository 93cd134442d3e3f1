from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "fill_slugs of tests.renamesbefore, renamed and moved to this app."
    run_once = True
    replaces = ["renamesbefore.fill_slugs"]

    def handle(self, *args, **options):
        note("populate_slugs")
