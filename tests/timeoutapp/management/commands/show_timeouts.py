from django.db import connection, transaction

from managed_commands.base import ManagedBaseCommand

from ._queries import settings_sql


class Command(ManagedBaseCommand):
    help = "Prints the timeouts in effect on its connection, outside and inside a transaction."

    statement_timeout = 2
    lock_timeout = 0.5

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute(settings_sql())
            self.stdout.write(f"autocommit: {cursor.fetchone()}")
            with transaction.atomic():
                cursor.execute(settings_sql())
                self.stdout.write(f"atomic: {cursor.fetchone()}")
