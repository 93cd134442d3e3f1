from django.core.mail import send_mail
from django.db import connection

from managed_commands.base import ManagedBaseCommand
from tests.batchmodels.models import Item, Label
from tests.testapp.management.commands._effects import hold


class Command(ManagedBaseCommand):
    help = "A run_once data fix that supports audited dry runs."
    run_once = True
    supports_dry_run = True

    def add_arguments(self, parser):
        parser.add_argument("--break-fk", action="store_true")
        parser.add_argument("--ddl", action="store_true")
        parser.add_argument("--commit", action="store_true")
        parser.add_argument("--mail", action="store_true")
        parser.add_argument("--seconds", type=float, default=0)

    def handle(self, *args, break_fk, ddl, commit, mail, seconds, **options):
        self.stdout.write(f"dry_run={self.dry_run} option={options['dry_run']}")
        hold(seconds)
        Item.objects.bulk_create([Item(number=n) for n in range(100, 103)])
        Item.objects.filter(number__gte=100).update(processed=1)
        Item.objects.filter(number=102).delete()
        Label.objects.create(item=Item.objects.get(number=100), text="fixed")
        if mail:
            send_mail("fixed", "the data fix ran", "ops@example.com", ["team@example.com"])
        if break_fk:
            Label.objects.create(item_id=999_999, text="dangling")
        with connection.cursor() as cursor:
            if ddl:
                cursor.execute("CREATE TABLE dry_fix_ddl (id integer)")
            if commit:
                cursor.execute("COMMIT")
        self.stdout.write("fixed")
