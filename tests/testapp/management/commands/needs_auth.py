from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Requires a migration of django.contrib.auth, which lives on the default database."
    requires = ["auth.0001_initial"]

    def handle(self, *args, **options):
        self.stdout.write("needs_auth: done")
