"""A django.tasks task for the dry-run tests (importable only where django.tasks exists)."""

from django.tasks import task

from tests.batchmodels.models import Item


@task
def note(text: str) -> None:
    Item.objects.create(number=Item.objects.count() + 1)
