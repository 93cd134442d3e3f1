"""The Celery app of the test project (MC_TEST_TASKS=celery), as a project has one:
configured from the Django settings (``CELERY_*``), tasks found by ``autodiscover_tasks()``
(``managed_commands.tasks`` among them). Workers: ``celery -A tests.celery_app worker``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
if not os.environ.get("MC_TEST_CELERY_NO_TASKS"):
    app.autodiscover_tasks()
