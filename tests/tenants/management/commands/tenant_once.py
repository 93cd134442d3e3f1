import os

from django.db import connection

from managed_commands.base import ManagedBaseCommand
from tests.testapp.management.commands._effects import hold, note


class Command(ManagedBaseCommand):
    help = "A run_once command that notes the schema it ran in; fails in MC_TEST_FAIL_SCHEMA."
    run_once = True

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=0)

    def handle(self, *args, seconds, **options):
        schema = connection.schema_name
        note(f"tenant_once {schema}")
        hold(seconds)
        if schema == os.environ.get("MC_TEST_FAIL_SCHEMA"):
            raise RuntimeError(f"tenant_once failed on purpose in {schema}")
        self.stdout.write(f"tenant_once: done in {schema}")
