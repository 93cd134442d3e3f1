"""``run_pending_commands --all-tenants``: what happened in each tenant, and the summary.

The command deploys each tenant as it deploys one scope; this keeps the tally:
one outcome per tenant, the failures, and when to stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import CommandError, OutputWrapper
from django.db import connections

from managed_commands import conf
from managed_commands.exceptions import PendingCommandFailed
from managed_commands.formatting import plural
from managed_commands.scopes import command_database

__all__ = ["TenantsDeploy"]

NOT_REACHED = "not reached"


class TenantsDeploy:
    """The outcome of the deploy step in each tenant, in order.

    Args:
        keep_going: Carry on past a failing tenant (else stop at the first).
    """

    def __init__(self, keep_going: bool) -> None:
        self.keep_going = keep_going
        self.outcomes: dict[str, str] = {}
        self.failed: list[str] = []
        self._current = ""

    def start(self, tenants: Iterable[Any]) -> Iterator[Any]:
        """Yield each of ``tenants`` to deploy, until a failure stops the deploy."""
        _refuse_inside_a_tenant()
        tenants = list(tenants)
        self.outcomes = dict.fromkeys((t.schema_name for t in tenants), NOT_REACHED)
        for tenant in tenants:
            if self.failed and not self.keep_going:
                return
            yield tenant

    @contextmanager
    def step(self, schema: str, stderr: OutputWrapper) -> Iterator[None]:
        """Deploy tenant ``schema`` inside: a ``CommandError`` is its failure, reported."""
        self._current = schema
        try:
            yield
        except CommandError as exc:
            self.failed.append(schema)
            name = exc.command_name if isinstance(exc, PendingCommandFailed) else ""
            self.outcomes[schema] = (
                f"FAILED at {name}" if name else f"FAILED ({type(exc).__name__})"
            )
            stderr.write(f"Tenant '{schema}': {type(exc).__name__}: {exc}")

    def done(self, outcome: str) -> None:
        """Record the outcome of the tenant being deployed ("ran 2", "nothing pending"...)."""
        self.outcomes[self._current] = outcome

    def heading(self) -> str:
        return f"Summary across {plural(len(self.outcomes), 'tenant')}:"

    def lines(self) -> list[str]:
        """One line per tenant: its schema, then its outcome."""
        width = max(len(schema) for schema in self.outcomes)
        return [f"  {schema:<{width}}  {outcome}" for schema, outcome in self.outcomes.items()]

    def raise_for_failures(self) -> None:
        """Raise ``PendingCommandFailed`` naming the tenants that failed, if any did."""
        if not self.failed:
            return
        left = [schema for schema, outcome in self.outcomes.items() if outcome == NOT_REACHED]
        message = (
            f"run_pending_commands failed in {len(self.failed)} of "
            f"{plural(len(self.outcomes), 'tenant')}: {', '.join(self.failed)}."
        )
        if left:
            message += (
                f" It stopped there, {plural(len(left), 'tenant')} not reached; "
                "--keep-going carries on past a failing tenant."
            )
        raise PendingCommandFailed(message + " Fix the failure, then run it again.")


def _refuse_inside_a_tenant() -> None:
    # Under all_tenants_command or tenant_command, a tenant is already selected:
    # deploying every tenant from each of them would deploy each N times.
    schema = getattr(connections[command_database()], "schema_name", conf.public_schema())
    if schema != conf.public_schema():
        raise CommandError(
            f"--all-tenants deploys every tenant, but tenant '{schema}' is selected: run "
            "'python manage.py run_pending_commands --all-tenants' on its own, not under "
            "all_tenants_command or tenant_command."
        )
