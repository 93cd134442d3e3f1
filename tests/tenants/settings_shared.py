"""django-tenants project with ``managed_commands`` in SHARED_APPS only.

One central history table, in the public schema, holds every tenant's runs.
PostgreSQL only: the database comes from ``tests.settings`` (MC_TEST_DB=postgresql).
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import BACKEND, DATABASES

if BACKEND != "postgresql":
    raise RuntimeError("The django-tenants test project needs MC_TEST_DB=postgresql.")

DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
TENANT_MODEL = "tenants.Client"
TENANT_DOMAIN_MODEL = "tenants.Domain"

SHARED_APPS = [
    "django_tenants",
    "tests.tenants",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "managed_commands",
]
# MC_TEST_EXTRA_APPS (apps of commands only, such as tests.cadenceapp) go with the tenants'.
TENANT_APPS = ["django.contrib.contenttypes", "tests.testapp"] + [
    app for app in os.environ.get("MC_TEST_EXTRA_APPS", "").split(",") if app
]


def installed(shared, tenant):
    return shared + [app for app in tenant if app not in shared]


INSTALLED_APPS = installed(SHARED_APPS, TENANT_APPS)
