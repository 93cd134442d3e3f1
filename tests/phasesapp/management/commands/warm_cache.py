from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "A pre_migrate command with another tag."
    run_once = True
    phase = "pre_migrate"
    tags = ["cache"]

    def handle(self, *args, **options):
        note("warm_cache")
