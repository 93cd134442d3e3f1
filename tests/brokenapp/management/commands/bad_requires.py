from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "A definition mistake: requires is a string."
    requires = "once"

    def handle(self, *args, **options):
        pass
