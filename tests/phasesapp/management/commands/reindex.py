from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "A post_migrate command tagged like the backfill it requires."
    run_once = True
    tags = {"search", "slow"}
    requires = ["backfill_slugs"]

    def handle(self, *args, **options):
        note("reindex")
