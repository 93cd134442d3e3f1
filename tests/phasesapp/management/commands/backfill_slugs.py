from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "A pre_migrate backfill that migration 0002 requires; it needs migration 0001."
    run_once = True
    phase = "pre_migrate"
    tags = {"search"}
    requires = ["phasesapp.0001_initial"]

    def handle(self, *args, **options):
        note("backfill_slugs")
