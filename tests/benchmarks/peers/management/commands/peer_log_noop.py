from command_log.management.commands.base import LoggedCommand


class Command(LoggedCommand):
    help = "Does nothing, logged by django-command-log."

    def do_command(self, *args, **options):
        return None
