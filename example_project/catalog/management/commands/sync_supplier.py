from django.core.management.base import CommandError

from managed_commands import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Sync with the supplier; always fails here, to show how failures are recorded."

    def add_arguments(self, parser):
        parser.add_argument("--supplier-url", default="https://supplier.invalid/api")

    def handle(self, *args, supplier_url, **options):
        self.stdout.write("Contacting the supplier...")
        raise CommandError("The supplier API is unreachable; nothing was changed.")
