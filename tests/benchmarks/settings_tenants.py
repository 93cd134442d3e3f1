"""Settings of the tenants benchmark: the django-tenants test project, TENANT_APPS layout.

``managed_commands`` is in TENANT_APPS only (a history table per tenant); the
test app's commands are replaced by the generated app named in
``MC_BENCH_GENERATED_APPS`` (see ``generated.py``). PostgreSQL only.
"""

import os
import sys

from tests.tenants.settings_tenant import *  # noqa: F403
from tests.tenants.settings_tenant import SHARED_APPS, TENANT_APPS, installed

sys.path.insert(0, os.environ["MC_BENCH_GENERATED_PATH"])
TENANT_APPS = [app for app in TENANT_APPS if app != "tests.testapp"]
TENANT_APPS += os.environ["MC_BENCH_GENERATED_APPS"].split(",")
INSTALLED_APPS = installed(SHARED_APPS, TENANT_APPS)
