"""The test settings without ``managed_commands`` in INSTALLED_APPS: a project that
uses a managed command but forgot to install the app.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "managed_commands"]
