"""Where each managed command stands in every tenant of a django-tenants project.

The data behind ``show_managed_commands --all-tenants`` and the admin's view
across tenants. django-tenants is imported only when asked for, so projects
without it never load it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps

from managed_commands import conf
from managed_commands.exceptions import NotMultiTenant
from managed_commands.scopes import command_database, current_scope
from managed_commands.status import CommandStatus, Condition, readable_statuses

__all__ = [
    "TenantStatus",
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

    def conditions(self) -> dict[str, Condition]:
        """Map each command name to its ``CommandStatus.condition`` in this tenant."""
        return {status.command.name: status.condition for status in self.statuses}


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


def statuses_by_tenant(include_public: bool = False) -> list[TenantStatus]:
    """``command_statuses()`` of every tenant, read from inside each tenant.

    Each tenant is selected in turn, so the history is read where that
    tenant's runs are written: its own table when ``managed_commands`` is in
    TENANT_APPS, the public one (filtered by scope) when it is in SHARED_APPS.

    Args:
        include_public: Also report the public schema, the unscoped history
            (only meaningful when ``managed_commands`` is in SHARED_APPS).

    Raises:
        NotMultiTenant: django-tenants is not installed.
        TrackingUnavailable: a tenant's history cannot be read (no table...).
    """
    return [
        TenantStatus(tenant.schema_name, current_scope(), readable_statuses(brief=True))
        for tenant in each_tenant(all_tenants(include_public))
    ]
