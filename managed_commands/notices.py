"""After ``migrate``: list the pending run_once commands and say how to run them, and
the done ones whose source changed since they ran."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import OutputWrapper
from django.core.management.color import color_style
from django.db import connections

from managed_commands import conf, listing
from managed_commands.executor import CommandExecutor
from managed_commands.models import CommandExecution

logger = logging.getLogger("managed_commands")


def pending_after_migrate(
    *, verbosity: int = 1, using: str = "default", stdout: Any = None, **kwargs: Any
) -> None:
    """``post_migrate`` receiver: list the pending run_once commands in run order, then
    the done ones whose source changed since their last successful run.

    Silent at verbosity 0, with ``MANAGED_COMMANDS["MIGRATE_NOTICE"] = False``,
    when none is pending, and when ``using`` does not hold the history. Never
    makes migrate fail: an error (no history table yet...) is logged, not raised.
    """
    if not verbosity:
        return
    try:
        if not conf.migrate_notice() or using != conf.history_database():
            return
        table = CommandExecution._meta.db_table
        if table not in connections[using].introspection.table_names():
            return
        executor = CommandExecutor(using)
        pending = [command.name for command in executor.plan()]
        changed = [status.command.name for status in listing.changed(executor.statuses.values())]
    except Exception:  # a notice must never make migrate fail
        logger.warning("Could not list the pending managed commands after migrate", exc_info=True)
        return
    out = OutputWrapper(stdout or sys.stdout)
    style = color_style()
    if pending:
        out.write(style.MIGRATE_HEADING(f"Pending run_once commands: {', '.join(pending)}"))
        out.write("  Run them in order with: python manage.py run_pending_commands")
    if changed:
        out.write(
            style.MIGRATE_HEADING(
                f"Done run_once commands whose source changed since their last successful "
                f"run: {', '.join(changed)}"
            )
        )
        out.write("  Rerun those whose change matters with:")
        for name in changed:
            out.write(f"    python manage.py {name} --rerun")
