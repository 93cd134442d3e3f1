"""The scope a run belongs to: a tenant, a site, or "" for an unscoped project."""

from __future__ import annotations

from django.conf import settings
from django.db import connections

from managed_commands import conf


def current_scope(using: str) -> str:
    """Return the scope of a run starting now on database ``using``."""
    connection = connections[using]
    custom = conf.scope_function()
    if custom is not None:
        return str(custom(connection) or "")
    # django-tenants keeps the active tenant's schema on the connection.
    schema = getattr(connection, "schema_name", None)
    if schema and schema != getattr(settings, "PUBLIC_SCHEMA_NAME", "public"):
        return str(schema)
    return ""
