"""After ``migrate``: list the pending run_once commands and say how to run them, and
the done ones whose source changed since they ran."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.apps import apps
from django.core.management.base import OutputWrapper
from django.core.management.color import color_style
from django.db import DatabaseError, connections

from managed_commands import conf, listing
from managed_commands.exceptions import TrackingUnavailable
from managed_commands.executor import CommandExecutor
from managed_commands.loader import discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import is_missing_table
from managed_commands.tenants import deploy_targets, each_tenant

logger = logging.getLogger("managed_commands")

# How many tenants the notice names before "and N more".
_NAMED_TENANTS = 5


def pending_after_migrate(
    *, verbosity: int = 1, using: str = "default", stdout: Any = None, **kwargs: Any
) -> None:
    """``post_migrate`` receiver: list the pending run_once commands in run order, then
    the done ones whose source changed since their last successful run.

    Silent at verbosity 0, with ``MANAGED_COMMANDS["MIGRATE_NOTICE"] = False``,
    when none is pending, and when ``using`` does not hold the history. Never
    makes migrate fail: an error (no history table yet...) is logged, not raised.

    Under django-tenants, ``migrate_schemas`` sends ``post_migrate`` once per
    schema: the notice is said once, after the public schema, about every
    tenant (see ``_tenants_notice()``).
    """
    if not verbosity:
        return
    try:
        if not conf.migrate_notice():
            return
        lines = _tenants_notice(using) if _tenants_migrate(using) else _notice(using)
    except Exception:  # a notice must never make migrate fail
        logger.warning("Could not list the pending managed commands after migrate", exc_info=True)
        return
    out = OutputWrapper(stdout or sys.stdout)
    for heading, advice in lines:
        out.write(color_style().MIGRATE_HEADING(heading))
        for line in advice:
            out.write(f"  {line}")


#: What a notice says: (heading, lines of advice) blocks.
Notice = list[tuple[str, list[str]]]


def _notice(using: str) -> Notice:
    """The pending run_once commands in run order, then the done ones whose source changed."""
    if using != conf.history_database():
        return []
    table = CommandExecution._meta.db_table
    if table not in connections[using].introspection.table_names():
        return []
    executor = CommandExecutor(using)
    pending = [command.name for command in executor.plan()]
    changed = [status.command.name for status in listing.changed(executor.statuses.values())]
    notice: Notice = []
    if pending:
        notice.append(
            (
                f"Pending run_once commands: {', '.join(pending)}",
                ["Run them in order with: python manage.py run_pending_commands"],
            )
        )
    if changed:
        notice.append(
            (
                f"Done run_once commands whose source changed since their last successful "
                f"run: {', '.join(changed)}",
                [
                    "Rerun those whose change matters with:",
                    *(f"  python manage.py {name} --rerun" for name in changed),
                ],
            )
        )
    return notice


def _tenants_migrate(using: str) -> bool:
    """Whether ``using`` is django-tenants' connection, migrated one schema at a time."""
    return apps.is_installed("django_tenants") and hasattr(connections[using], "schema_name")


def _tenants_notice(using: str) -> Notice:
    """One notice about every tenant, said after the public schema only.

    ``migrate_schemas`` migrates the public schema first, so the deploy step
    is named before the tenants' migrations scroll by; the tenants' own
    ``post_migrate`` stay silent (one notice per tenant would drown the rest,
    and a tenant created at run time would read every other tenant's history).
    """
    if using != conf.tenant_database():
        return []
    if getattr(connections[using], "schema_name", None) != conf.public_schema():
        return []
    targets = deploy_targets()
    pending = {tenant.schema_name: _pending_here() for tenant in each_tenant(targets)}
    waiting = [schema for schema, names in pending.items() if names]
    if not waiting:
        return []
    names = list(dict.fromkeys(name for schema in waiting for name in pending[schema]))
    heading = (
        f"Pending run_once commands in {len(waiting)} of {len(targets)} tenants "
        f"({_named(waiting)}): {', '.join(names)}"
    )
    return [
        (heading, ["Deploy them all with: python manage.py run_pending_commands --all-tenants"])
    ]


def _pending_here() -> list[str]:
    """The pending run_once commands of the selected tenant, in run order.

    A tenant whose history table does not exist yet (its migrations come after
    the public schema's) has every run_once command pending.
    """
    try:
        return [command.name for command in CommandExecutor().plan()]
    except TrackingUnavailable as exc:
        cause = exc.__cause__
        if not (isinstance(cause, DatabaseError) and is_missing_table(cause)):
            raise
        return [command.name for command in discover().commands.values() if command.run_once]


def _named(schemas: list[str]) -> str:
    more = len(schemas) - _NAMED_TENANTS
    named = ", ".join(schemas[:_NAMED_TENANTS])
    return f"{named} and {more} more" if more > 0 else named
