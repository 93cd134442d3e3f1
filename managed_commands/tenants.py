"""Commands across the tenants of a django-tenants project.

Where each managed command stands in every tenant (the data behind
``show_managed_commands --all-tenants`` and the admin's view across tenants), and
the tally of ``run_pending_commands --all-tenants``: one outcome per tenant, the
failures, and when to stop. django-tenants is imported only when asked for, so
projects without it never load it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.management.base import CommandError, OutputWrapper
from django.db import connections

from managed_commands import conf
from managed_commands.conf import command_database, current_scope
from managed_commands.exceptions import NotMultiTenant, PendingCommandFailed
from managed_commands.formatting import plural
from managed_commands.status import CommandState, CommandStatus, alert_late, readable_statuses

__all__ = [
    "TenantStatus",
    "TenantsDeploy",
    "all_tenants",
    "deploy_targets",
    "each_tenant",
    "public_has_history",
    "statuses_by_tenant",
]


@dataclass(frozen=True)
class TenantStatus:
    """Every managed command and its history in one tenant.

    Attributes:
        schema: The tenant's schema name.
        scope: The scope its runs are recorded under ("" for the public schema).
        statuses: ``command_statuses(brief=True)`` as seen from inside the tenant.
    """

    schema: str
    scope: str
    statuses: list[CommandStatus]

    def shown_states(self) -> dict[str, CommandState]:
        """Map each command name to its ``CommandStatus.shown_state`` in this tenant."""
        return {status.command.name: status.shown_state for status in self.statuses}


def _require_django_tenants() -> None:
    if not apps.is_installed("django_tenants"):
        raise NotMultiTenant(
            "Runs across tenants need django-tenants, which is not in INSTALLED_APPS. "
            "With another multi-tenancy scheme, run the command once per scope instead."
        )


def all_tenants(include_public: bool = False) -> list[Any]:
    """Every tenant of the django-tenants tenant model, sorted by schema name.

    Args:
        include_public: Also list the public tenant (when it has a row).

    Raises:
        NotMultiTenant: django-tenants is not installed.
    """
    _require_django_tenants()
    from django_tenants.utils import get_tenant_model  # optional: only with django-tenants

    found = get_tenant_model().objects.using(command_database()).order_by("schema_name")
    if not include_public:
        found = found.exclude(schema_name=conf.public_schema())
    return list(found)


def public_has_history() -> bool:
    """Tell whether the public schema holds a history of its own (in SHARED_APPS)."""
    return "SHARED_APPS" in conf.tenant_app_lists()


def deploy_targets() -> list[Any]:
    """The tenants ``run_pending_commands --all-tenants`` deploys, in that order.

    Every tenant by schema name, after the public one when it holds a history
    of its own (its runs are recorded under the scope "").

    Raises:
        NotMultiTenant: django-tenants is not installed.
    """
    public = conf.public_schema()
    # sorted() is stable: public first, the others still by schema name.
    return sorted(all_tenants(public_has_history()), key=lambda t: t.schema_name != public)


def each_tenant(tenants: Iterable[Any]) -> Iterator[Any]:
    """Yield each of ``tenants`` while it is selected (django-tenants' ``tenant_context``)."""
    _require_django_tenants()
    from django_tenants.utils import tenant_context  # optional: only with django-tenants

    for tenant in tenants:
        with tenant_context(tenant, database=command_database()):
            yield tenant


def statuses_by_tenant(include_public: bool = False, *, alert: bool = False) -> list[TenantStatus]:
    """``command_statuses()`` of every tenant, read from inside each tenant.

    Each tenant is selected in turn, so the history is read where that
    tenant's runs are written: its own table when ``managed_commands`` is in
    TENANT_APPS, the public one (filtered by scope) when it is in SHARED_APPS.

    Args:
        include_public: Also report the public schema, the unscoped history
            (only meaningful when ``managed_commands`` is in SHARED_APPS).
        alert: Also alert the recurring commands that turned late in each
            tenant (``status.alert_late()``), there: its late spells are
            recorded beside its history.

    Raises:
        NotMultiTenant: django-tenants is not installed.
        TrackingUnavailable: a tenant's history cannot be read (no table...).
    """
    found = []
    for tenant in each_tenant(all_tenants(include_public)):
        statuses = readable_statuses(brief=True)
        if alert:
            alert_late(statuses)
        found.append(TenantStatus(tenant.schema_name, current_scope(), statuses))
    return found


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
