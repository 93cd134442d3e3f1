from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Requires a migration that is applied and one that is not."
    requires = ["managed_commands.0001_initial", "testapp.9999_never"]

    def handle(self, *args, **options):
        pass
