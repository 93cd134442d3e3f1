"""The scope a run belongs to: a tenant, a site, or "" for an unscoped project.

The scope is read from the connection the command runs on, which is not
necessarily the one that holds the history: django-tenants selects the
tenant on its own alias (``TENANT_DB_ALIAS``, ``default`` unless set), while
``MANAGED_COMMANDS["DATABASE"]`` may name another one.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from managed_commands import conf


def command_database() -> str:
    """Return the alias of the connection commands run on (and tenants are selected on)."""
    return conf.tenant_database()


def current_scope() -> str:
    """Return the scope of a run starting now in this thread.

    ``MANAGED_COMMANDS["SCOPE"]``, when set, is called with the command's
    connection. Otherwise the django-tenants schema selected on that
    connection is the scope, except the public schema, which is "" like an
    unscoped project.
    """
    connection = connections[command_database()]
    custom = conf.scope_function()
    if custom is not None:
        return str(custom(connection) or "")
    schema = getattr(connection, "schema_name", None)
    if schema and schema != conf.public_schema():
        return str(schema)
    return ""


def selected_tenant(using: str) -> Any:
    """Return the django-tenants tenant selected on ``using`` in this thread (None without it)."""
    return getattr(connections[using], "tenant", None)


def select_tenant(using: str, tenant: Any) -> None:
    """Select ``tenant`` on ``using`` in this thread, so tables resolve as where it was read.

    Django connections are per thread, and django-tenants starts each new one
    on the public schema: a helper thread writing a tenant's history must
    select that tenant first.
    """
    if tenant is not None:
        connections[using].set_tenant(tenant)  # type: ignore[attr-defined]
