import os
import time
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = "Runs 'once' inside transaction.atomic(), like a data migration would."

    def add_arguments(self, parser):
        parser.add_argument("--rollback", action="store_true")
        parser.add_argument("--fail-inner", action="store_true")
        parser.add_argument(
            "--catch", action="store_true", help="Catch the inner failure and commit."
        )
        parser.add_argument("--hold", action="store_true", help="Wait for MC_TEST_RELEASE.")

    def handle(self, *args, rollback, fail_inner, catch, hold, **options):
        with transaction.atomic():
            try:
                call_command("once", fail=fail_inner)
            except RuntimeError:
                if not catch:
                    raise
            if hold:
                Path(os.environ["MC_TEST_STARTED"]).write_text("in transaction")
                release = Path(os.environ["MC_TEST_RELEASE"])
                while not release.exists():
                    time.sleep(0.02)
            if rollback:
                raise CommandError("rolled back on purpose")
