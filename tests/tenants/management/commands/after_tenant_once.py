from django.db import connection

from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import note


class Command(ManagedBaseCommand):
    help = "Requires tenant_once, in the same tenant."
    run_once = True
    requires = ["tenant_once"]

    def handle(self, *args, **options):
        note(f"after_tenant_once {connection.schema_name}")
        self.stdout.write(f"after_tenant_once: done in {connection.schema_name}")
