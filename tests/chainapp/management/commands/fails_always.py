from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "A run_once command beside the chain whose every run fails."
    run_once = True

    def handle(self, *args, **options):
        note("fails_always")
        raise RuntimeError("fails_always failed on purpose")
