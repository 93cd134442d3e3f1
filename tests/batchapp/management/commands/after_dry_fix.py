from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Requires dry_fix: a dry run of dry_fix must not meet it."
    requires = ["dry_fix"]

    def handle(self, *args, **options):
        self.stdout.write("after dry_fix")
