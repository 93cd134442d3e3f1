from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Does nothing, untracked (the baseline)."

    def handle(self, *args, **options):
        pass
