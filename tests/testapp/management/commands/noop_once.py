from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Does nothing, once."
    run_once = True

    def handle(self, *args, **options):
        pass
