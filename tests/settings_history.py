"""The test project with its history on a second database, ``history``.

``MC_TEST_HISTORY`` says how the package is told: ``setting`` names the alias
in ``MANAGED_COMMANDS["DATABASE"]``; ``router`` leaves that unset and routes
``managed_commands`` with ``HistoryRouter`` (which also keeps its table off
``default``). ``MC_TEST_HISTORY_DB_NAME`` is the database to use.
"""

import copy
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, MANAGED_COMMANDS

HISTORY = os.environ["MC_TEST_HISTORY"]

DATABASES["history"] = copy.deepcopy(DATABASES["default"])
DATABASES["history"]["NAME"] = os.environ["MC_TEST_HISTORY_DB_NAME"]

if HISTORY == "setting":
    MANAGED_COMMANDS["DATABASE"] = "history"
elif HISTORY == "router":
    DATABASE_ROUTERS = ["tests.settings_history.HistoryRouter"]
else:
    raise RuntimeError(f"MC_TEST_HISTORY must be 'setting' or 'router', not {HISTORY!r}.")


class HistoryRouter:
    """Keeps ``managed_commands`` on ``history``, and everything else off it."""

    def db_for_read(self, model, **hints):
        return "history" if model._meta.app_label == "managed_commands" else None

    db_for_write = db_for_read

    def allow_migrate(self, db, app_label, **hints):
        return (db == "history") == (app_label == "managed_commands")
