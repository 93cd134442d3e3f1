"""A django-tenants project with three tenants on a fresh PostgreSQL database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import backends
from tests.processes import TABLE, ProcessProject

TENANTS = ("acme", "globex", "initech")
CADENCES = "managed_commands_commandcadence"
# Where managed_commands is installed: SHARED_APPS (one table in the public
# schema), TENANT_APPS (a table in each tenant's schema), or SHARED_APPS with
# the history read and written through a second alias ("alias").
INSTALLATIONS = ("shared", "tenant", "alias")

_CREATE_TENANTS = """
from tests.tenants.models import Client
Client(schema_name="public", name="Public").save(verbosity=0)
for schema in {tenants!r}:
    Client(schema_name=schema, name=schema.title()).save(verbosity=0)
"""


def unavailable() -> str | None:
    """Why the django-tenants tests cannot run in this session, or None when they can."""
    if "postgresql" not in backends.process_backends():
        return f"django-tenants needs PostgreSQL, and this run is MC_TEST_DB={backends.requested()}"
    reason = backends.unavailable("postgresql")
    return f"{reason} (set MC_TEST_DB=postgresql to require it)" if reason else None


class TenantProject(ProcessProject):
    """A migrated django-tenants project, the public tenant and ``TENANTS``."""

    def __init__(self, installation: str, workdir: Path) -> None:
        super().__init__("postgresql", workdir, settings=f"tests.tenants.settings_{installation}")
        self.installation = installation

    def create(self, migrate: bool = True) -> TenantProject:
        super().create(migrate)
        result = self.run("shell", "-v0", "-c", _CREATE_TENANTS.format(tenants=TENANTS))
        assert result.returncode == 0, result.stderr
        return self

    def table(self, schema: str, name: str = TABLE) -> str:
        """The table of ``schema``'s rows: the history, or managed_commands' table ``name``."""
        return f'"{schema}".{name}' if self.installation == "tenant" else f"public.{name}"

    def rows(self, command_name: str | None = None, *, schema: str) -> list[dict[str, Any]]:
        """The runs recorded for tenant ``schema``, oldest first."""
        scope = "" if schema == "public" else schema
        rows = super().rows(command_name, table=self.table(schema))
        return [row for row in rows if row["scope"] == scope]

    def pad_history(self, schema: str, copies: int) -> None:
        """Add ``copies`` older copies of each run of tenant ``schema`` (none of them newest)."""
        table = self.table(schema)
        columns = [
            name
            for (name,) in self.sql(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s AND column_name <> 'id'",
                (table.split(".")[0].strip('"'), TABLE),
            )
        ]
        # The keys are unique: a copy holds none. Each copy is a day older than the last.
        copied = {"lock_key": "NULL", "once_key": "NULL"}
        copied["executed_at"] = "executed_at - copy * interval '1 day'"
        values = ", ".join(copied.get(name, name) for name in columns)
        scope = "" if schema == "public" else schema
        self.sql(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM {table} "
            "CROSS JOIN generate_series(1, %s) AS copy WHERE scope = %s",
            (copies, scope),
        )

    def reset(self) -> None:
        for schema in TENANTS:  # the runs, and when each recurring command was first seen
            for name in (TABLE, CADENCES):
                self.sql(f"DELETE FROM {self.table(schema, name)}")
        self.effects.unlink(missing_ok=True)
        self.started.unlink(missing_ok=True)
