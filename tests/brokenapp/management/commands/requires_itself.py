from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "A definition mistake: requires itself."
    requires = ["requires_itself"]

    def handle(self, *args, **options):
        pass
