"""django-tenants project whose history is read and written through another alias.

``managed_commands`` is in SHARED_APPS, and ``MANAGED_COMMANDS["DATABASE"]``
names ``history``: the same PostgreSQL database through Django's own backend,
which never leaves the public schema. The scope must still come from the
tenant selected on ``default``, the connection the command runs on.
"""

import copy

from tests.tenants.settings_shared import *  # noqa: F403
from tests.tenants.settings_shared import DATABASES, MANAGED_COMMANDS

DATABASES["history"] = copy.deepcopy(DATABASES["default"])
DATABASES["history"]["ENGINE"] = "django.db.backends.postgresql"
MANAGED_COMMANDS = {**MANAGED_COMMANDS, "DATABASE": "history"}
