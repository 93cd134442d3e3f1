from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Requires a command that does not exist (a typo of noop_once)."
    requires = ["noop_onse"]

    def handle(self, *args, **options):
        pass
