from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Part of a cycle of requires."
    run_once = True
    requires = ["cycle_a"]

    def handle(self, *args, **options):
        pass
