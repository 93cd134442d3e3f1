"""An audited dry run: the run's work inside a transaction that is rolled back.

The databases a dry run can roll back (the command's own and the history's)
each get one transaction around ``handle()``; foreign keys are checked before
the rollback, so a dry run that breaks one fails as the real run would.
Statements are counted by table and kind while they run; a statement that
would end the transaction (``COMMIT``, and on MySQL/MariaDB the DDL that
commits implicitly) or a write to another database is refused. Mail goes to
Django's locmem backend and ``django.tasks`` enqueues to the dummy backend,
both counted. Everything else outside the database is the command's own to
skip (``self.dry_run``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.conf import settings
from django.core import mail
from django.db import connections, transaction

from managed_commands.conf import tasks_api
from managed_commands.exceptions import DryRunRefused

__all__ = ["DryRun"]

_EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# A write's kind and its table (quoted, maybe schema-qualified): the last name is kept.
_WRITE = re.compile(
    r"""^\s*(?:(INSERT|REPLACE)\s+(?:IGNORE\s+)?INTO|(UPDATE)|(DELETE)\s+FROM)\s+([^\s(]+)""",
    re.IGNORECASE,
)
# Statements that would end the dry run's transaction on every backend.
_ENDS_TRANSACTION = re.compile(
    r"^\s*(COMMIT|END|BEGIN|START\s+TRANSACTION|ROLLBACK(?!\s+TO\b)|SET\s+(SESSION\s+)?AUTOCOMMIT)\b",
    re.IGNORECASE,
)
# What MySQL and MariaDB commit implicitly before running (temporary tables excepted).
_IMPLICIT_COMMIT = re.compile(
    r"^\s*(?!(?:CREATE|DROP)\s+TEMPORARY\b)"
    r"(CREATE|ALTER|DROP|TRUNCATE|RENAME|LOCK\s+TABLES?|UNLOCK\s+TABLES?|GRANT|REVOKE|"
    r"ANALYZE|OPTIMIZE|REPAIR|FLUSH|INSTALL|UNINSTALL)\b",
    re.IGNORECASE,
)
_QUOTES = '`"[]'


class DryRun:
    """The rolled-back transactions, counters and held-back side effects of one dry run.

    Args:
        name: The command's name, for the messages.
        databases: Aliases whose work is rolled back; writes to any other are refused.
        skip_tables: Tables left out of the summary (the history's own).
    """

    def __init__(self, name: str, databases: Iterable[str], skip_tables: Iterable[str]) -> None:
        self.name = name
        self.databases = list(dict.fromkeys(databases))
        self._skip = frozenset(skip_tables)
        self._rows: dict[str, dict[str, int]] = {}
        self._statements = 0
        self.mails = 0
        self.tasks = 0
        self.batches = 0

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """Run the block with its writes counted, then roll them all back.

        When the block ends without an exception, deferred constraints are
        checked first: a violation raises ``IntegrityError`` as a commit would.
        """
        with ExitStack() as stack:
            blocks = []
            for alias in self.databases:
                block = transaction.atomic(using=alias)
                stack.enter_context(block)
                blocks.append(alias)
            for alias in connections:
                watcher = (
                    _Watcher(alias, self._check, self._count)
                    if alias in self.databases
                    else _Watcher(alias, self._refuse_write, None)
                )
                stack.enter_context(connections[alias].execute_wrapper(watcher))
            stack.enter_context(self._mail_held_back())
            stack.enter_context(self._tasks_held_back())
            try:
                yield
                self._check_constraints()
            finally:
                for alias in blocks:
                    transaction.set_rollback(True, using=alias)

    def summary(self) -> dict[str, Any]:
        """What the run would have written: rows per table and kind, statements, mails, tasks."""
        return {
            "rows": {table: dict(kinds) for table, kinds in sorted(self._rows.items())},
            "statements": self._statements,
            "mails": self.mails,
            "tasks": self.tasks,
            "batches": self.batches,
        }

    def describe(self) -> str:
        """One line for the terminal: what was rolled back."""
        rows = ", ".join(
            f"{table} ({', '.join(f'{count:,} {kind.lower()}' for kind, count in kinds.items())})"
            for table, kinds in sorted(self._rows.items())
        )
        held = []
        if self.mails:
            held.append(f"{self.mails} mail{'s' if self.mails != 1 else ''} not sent")
        if self.tasks:
            held.append(f"{self.tasks} task{'s' if self.tasks != 1 else ''} not enqueued")
        wrote = f"it would have written {rows}" if rows else "it would have written no rows"
        return (
            f"Dry run of '{self.name}' rolled back: {wrote}" + "".join(f"; {h}" for h in held) + "."
        )

    # -- statements --------------------------------------------------------------
    def _check(self, alias: str, sql: str) -> None:
        """Refuse what would end the transaction before the rollback could undo it."""
        vendor = connections[alias].vendor
        if _ENDS_TRANSACTION.match(sql) or (vendor == "mysql" and _IMPLICIT_COMMIT.match(sql)):
            raise DryRunRefused(self._refusal(sql, alias))

    def _count(self, alias: str, sql: str, params: Any, many: bool, cursor: Any) -> None:
        found = _WRITE.match(sql)
        if found is None:
            return
        kind = (found.group(1) or found.group(2) or found.group(3)).upper()
        table = found.group(4).rsplit(".", 1)[-1].strip(_QUOTES)
        if table in self._skip:
            return
        self._statements += 1
        rows = cursor.rowcount
        if rows <= 0 and kind in ("INSERT", "REPLACE"):
            # An INSERT ... RETURNING counts its rows only once they are fetched
            # (SQLite), which the ORM does after this wrapper returns.
            rows = len(params) if many else _value_rows(sql)
        if rows > 0:
            kinds = self._rows.setdefault(table, {})
            kinds[kind] = kinds.get(kind, 0) + rows

    def _refuse_write(self, alias: str, sql: str) -> None:
        if _WRITE.match(sql) or _IMPLICIT_COMMIT.match(sql):
            rolled_back = _listed(self.databases) or "none"
            raise DryRunRefused(
                f"Dry run of '{self.name}' refused a write to database '{alias}', which it "
                f"cannot roll back (it rolls back: {rolled_back}). Skip that write when "
                f"self.dry_run is true."
            )

    def _refusal(self, sql: str, alias: str) -> str:
        statement = " ".join(sql.split())[:80]
        if _ENDS_TRANSACTION.match(sql):
            why = "it would end the dry run's transaction and make its writes real"
        else:
            why = (
                f"{connections[alias].display_name} commits implicitly before it, which "
                f"would make the dry run's writes real"
            )
        return (
            f"Dry run of '{self.name}' refused {statement!r} on database '{alias}': {why}. "
            f"Run schema changes in a migration, or skip them when self.dry_run is true."
        )

    def _check_constraints(self) -> None:
        """Deferred foreign keys fail here as they would at the real run's commit."""
        for alias in self.databases:
            connection = connections[alias]
            if connection.features.can_defer_constraint_checks:
                connection.check_constraints(table_names=sorted(self._rows) or None)

    # -- what leaves the process -------------------------------------------------
    @contextmanager
    def _mail_held_back(self) -> Iterator[None]:
        from django.test.utils import override_settings  # only dry runs need it

        saved = mail.__dict__.get("outbox", _NONE)
        mail.outbox = []
        try:
            with override_settings(**_mail_in_memory()):
                yield
        finally:
            self.mails = len(mail.outbox)
            if saved is _NONE:
                del mail.outbox
            else:
                mail.outbox = saved

    @contextmanager
    def _tasks_held_back(self) -> Iterator[None]:
        tasks = tasks_api()
        if tasks is None:
            yield
            return
        from django.test.utils import override_settings  # only dry runs need it

        dummy = f"{tasks.__name__}.backends.dummy.DummyBackend"
        aliases = {*getattr(settings, "TASKS", {}), "default"}
        with override_settings(TASKS={alias: {"BACKEND": dummy} for alias in aliases}):
            try:
                yield
            finally:
                self.tasks = sum(len(tasks.task_backends[a].results) for a in aliases)


class _Watcher:
    """An ``execute_wrapper``: ``before(alias, sql)`` may refuse a statement,
    ``after(alias, sql, params, many, cursor)`` sees it once it ran."""

    def __init__(
        self,
        alias: str,
        before: Callable[[str, str], None],
        after: Callable[[str, str, Any, bool, Any], None] | None,
    ) -> None:
        self._alias = alias
        self._before = before
        self._after = after

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        self._before(self._alias, sql)
        result = execute(sql, params, many, context)
        if self._after is not None:
            self._after(self._alias, sql, params, many, context["cursor"])
        return result


def _mail_in_memory() -> dict[str, Any]:
    """The settings that send every mail to the locmem backend, as Django's test runner does.

    Django 6.1 deprecates ``EMAIL_BACKEND`` for ``MAILERS``: where mailers exist,
    each configured mailer (or the default one) is replaced instead.
    """
    if not hasattr(mail, "mailers"):  # before Django 6.1
        return {"EMAIL_BACKEND": _EMAIL_BACKEND}
    aliases = getattr(settings, "MAILERS", None) or ["default"]
    return {"MAILERS": {alias: {"BACKEND": _EMAIL_BACKEND} for alias in aliases}}


def _value_rows(sql: str) -> int:
    """The rows of an ``INSERT ... VALUES (...), (...)``: its top-level groups (0 without)."""
    start = sql.upper().find(" VALUES")
    if start < 0:
        return 0
    groups = depth = 0
    for char in sql[start:]:
        if char == "(":
            groups += depth == 0
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char.isalpha() and groups:
            break  # RETURNING, ON CONFLICT: the values are over
    return groups


def _listed(names: Iterable[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


_NONE = object()
