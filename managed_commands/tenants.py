"""Where each managed command stands in every tenant of a django-tenants project.

The data behind ``show_managed_commands --all-tenants`` and the admin's view
across tenants. django-tenants is imported only when asked for, so projects
without it never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings

from managed_commands.exceptions import NotMultiTenant
from managed_commands.scopes import command_database, current_scope
from managed_commands.status import CommandStatus, command_statuses


@dataclass(frozen=True)
class TenantStatus:
    """Every managed command and its history in one tenant.

    Attributes:
        schema: The tenant's schema name.
        scope: The scope its runs are recorded under ("" for the public schema).
        statuses: ``command_statuses()`` as seen from inside the tenant.
    """

    schema: str
    scope: str
    statuses: list[CommandStatus]

    def states(self) -> dict[str, str]:
        """Map each command name to its ``CommandStatus.condition``: running,
        failed, pending, done or repeatable.
        """
        return {status.command.name: state_word(status) for status in self.statuses}


def state_word(status: CommandStatus) -> str:
    """``running``, ``failed``, or the status's ``state`` (pending, done, repeatable)."""
    return status.condition


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
    from django_tenants.utils import get_tenant_model

    found = get_tenant_model().objects.using(command_database()).order_by("schema_name")
    if not include_public:
        found = found.exclude(schema_name=getattr(settings, "PUBLIC_SCHEMA_NAME", "public"))
    return list(found)


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
    """
    _require_django_tenants()
    from django_tenants.utils import tenant_context

    found = []
    for tenant in all_tenants(include_public):
        with tenant_context(tenant):
            found.append(TenantStatus(tenant.schema_name, current_scope(), command_statuses()))
    return found
