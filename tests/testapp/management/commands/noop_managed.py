from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Does nothing, tracked."

    def handle(self, *args, **options):
        pass
