from django_managed_commands.base import ManagedCommand


class Command(ManagedCommand):
    help = "Does nothing, once, tracked by django-managed-commands."
    run_once = True

    def execute_command(self, *args, **options):
        return None
