import time

from django.db import connection

from managed_commands.base import ManagedBaseCommand

from ._queries import sleep_sql


class Command(ManagedBaseCommand):
    help = "Keeps running for --seconds (in a database query with --query); time_limit of 1 s."

    time_limit = 1

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=30)
        parser.add_argument("--query", action="store_true")

    def handle(self, *args, seconds, query, **options):
        self.stdout.write("over_time: started")
        self.stdout.flush()
        if query:
            with connection.cursor() as cursor:
                cursor.execute(sleep_sql(seconds))
        else:
            time.sleep(seconds)
        self.stdout.write("over_time: done")
