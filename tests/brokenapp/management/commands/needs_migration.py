from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Requires a migration that exists and two that do not."
    requires = ["managed_commands.0001_initial", "testapp.9999_never", "nosuchapp.0001_initial"]

    def handle(self, *args, **options):
        pass
