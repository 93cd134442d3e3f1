"""Settings of the benchmarks: the test project plus the benchmark app.

The published peers (django-managed-commands, django-command-log) are added
only when ``MC_BENCH_PEERS=1`` and only those that are installed, so the
whole-process and output benchmarks load exactly what a user's project would.

With ``MC_BENCH_GENERATED_PATH`` (see ``generated.py``), the test apps are
replaced by the generated apps named in ``MC_BENCH_GENERATED_APPS``.
"""

import os
import sys
from importlib.util import find_spec

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

PEER_MODULES = {
    "django_managed_commands": "django-managed-commands",
    "command_log": "django-command-log",
}
INSTALLED_PEERS = [module for module in PEER_MODULES if find_spec(module)]

INSTALLED_APPS = [*INSTALLED_APPS, "tests.benchmarks.benchapp"]
if os.environ.get("MC_BENCH_PEERS") == "1" and INSTALLED_PEERS:
    INSTALLED_APPS += [*INSTALLED_PEERS, "tests.benchmarks.peers"]

GENERATED_PATH = os.environ.get("MC_BENCH_GENERATED_PATH")
if GENERATED_PATH:
    sys.path.insert(0, GENERATED_PATH)
    test_apps = ("tests.testapp", "tests.benchmarks.benchapp", "tests.benchmarks.peers")
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in test_apps]
    INSTALLED_APPS += os.environ["MC_BENCH_GENERATED_APPS"].split(",")
