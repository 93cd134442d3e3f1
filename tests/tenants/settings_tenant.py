"""django-tenants project with ``managed_commands`` in TENANT_APPS only.

Each tenant's schema has its own history table; the public schema has none.
"""

from tests.tenants.settings_shared import *  # noqa: F403
from tests.tenants.settings_shared import SHARED_APPS, TENANT_APPS, installed

SHARED_APPS = [app for app in SHARED_APPS if app != "managed_commands"]
TENANT_APPS = [*TENANT_APPS, "managed_commands"]
INSTALLED_APPS = installed(SHARED_APPS, TENANT_APPS)
