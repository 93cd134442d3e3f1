from django_managed_commands.base import ManagedCommand


class Command(ManagedCommand):
    help = "Does nothing, tracked by django-managed-commands."

    def execute_command(self, *args, **options):
        return None
