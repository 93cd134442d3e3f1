from django.db import connection

from managed_commands.base import ManagedBaseCommand

from ._queries import sleep_sql


class Command(ManagedBaseCommand):
    help = "Runs one query that sleeps for --seconds, under a statement_timeout of 1 s."

    statement_timeout = 1

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=3)
        parser.add_argument("--atomic", action="store_true", help="Inside transaction.atomic().")

    def handle(self, *args, seconds, atomic, **options):
        self.stdout.write("slow_query: started")
        with connection.cursor() as cursor:
            if atomic:
                cursor.execute("SELECT 1")
            cursor.execute(sleep_sql(seconds))
        self.stdout.write("slow_query: done")
