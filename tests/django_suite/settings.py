"""Settings of Django's ``runtests.py`` running ``user_commands`` with managed commands.

Django's own ``tests/test_sqlite.py``, with the database of ``MC_TEST_DB`` (as in
``tests.settings``). ``runtests.py`` replaces ``INSTALLED_APPS`` with its
``ALWAYS_INSTALLED_APPS`` (contenttypes, auth, ...) plus the test apps it runs;
it reads this module first, so ``managed_commands`` and ``tests.django_suite``
are added to that list here.
"""

import sys

from django.core.exceptions import ImproperlyConfigured

from tests.settings import DATABASES  # noqa: F401 - the backend of MC_TEST_DB

SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False

_always_installed = getattr(sys.modules["__main__"], "ALWAYS_INSTALLED_APPS", None)
if not isinstance(_always_installed, list):
    raise ImproperlyConfigured(
        "tests.django_suite.settings is for Django's tests/runtests.py, which has an "
        "ALWAYS_INSTALLED_APPS list."
    )
for _app in ("managed_commands", "tests.django_suite"):
    if _app not in _always_installed:
        _always_installed.append(_app)

# Django's DiscoverRunner, each test's outcome also written to the report file.
TEST_RUNNER = "tests.django_suite.runner.Runner"
