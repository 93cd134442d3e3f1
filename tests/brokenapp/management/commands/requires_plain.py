from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Requires commands that are not managed: a plain one of ours and Django's migrate."
    requires = ["noop_plain", "migrate"]

    def handle(self, *args, **options):
        pass
