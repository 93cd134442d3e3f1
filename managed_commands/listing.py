"""What our own management commands print: the status lines of
``show_managed_commands``, their JSON form, the Mermaid graph, the matrix of commands
by tenants, progress lines that ``-v0`` silences, and the notice ``migrate`` ends with
(the pending run_once commands and how to run them)."""

from __future__ import annotations

import datetime
import itertools
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, OutputWrapper
from django.core.management.color import color_style
from django.db import DatabaseError, connections
from django.utils import timezone

from managed_commands import conf
from managed_commands.definition import PRE_MIGRATE, Definition, split_requires
from managed_commands.exceptions import TrackingUnavailable
from managed_commands.executor import CommandExecutor
from managed_commands.formatting import describe, figures, human_duration, local_time, plural
from managed_commands.loader import discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import is_missing_table
from managed_commands.status import CommandState, CommandStatus, Orphan, describe_gone
from managed_commands.tenants import TenantStatus, deploy_targets, each_tenant

#: The mark in front of each command, by ``CommandStatus.shown_state``.
MARKS = {
    CommandState.RUNNING: "[R]",
    CommandState.GONE: "[G]",
    CommandState.OUTCOME_UNKNOWN: "[?]",
    CommandState.QUEUED: "[Q]",
    CommandState.DONE: "[X]",
    CommandState.FAILED: "[F]",
    CommandState.LATE: "[L]",
    CommandState.OVERRUNNING: "[O]",
    CommandState.PENDING: "[ ]",
    CommandState.REPEATABLE: "[-]",
}


def requirement_text(status: CommandStatus) -> str:
    """The ``requires`` entries, each unapplied migration marked as such."""
    return ", ".join(
        f"{entry} (not applied)" if entry in status.unapplied_migrations else entry
        for entry in status.command.requires
    )


def by_app(statuses: Iterable[CommandStatus]) -> list[tuple[str, list[str]]]:
    """Lines as ``show_managed_commands`` prints them, grouped by app label."""
    groups = []
    for app_label, members in _grouped(statuses):
        width = max(len(s.command.name) for s in members)
        groups.append((app_label, [_line(s, width) for s in members]))
    return groups


def _grouped(statuses: Iterable[CommandStatus]) -> list[tuple[str, list[CommandStatus]]]:
    return [
        (app_label, list(group))
        for app_label, group in itertools.groupby(statuses, key=lambda s: s.command.app_label)
    ]


def _line(status: CommandStatus, width: int) -> str:
    details = []
    if status.command.phase == PRE_MIGRATE:
        details.append(f"phase {PRE_MIGRATE}")
    if status.command.tags:
        details.append(f"tags {', '.join(sorted(status.command.tags))}")
    if status.command.requires:
        details.append(f"requires {requirement_text(status)}")
    details.append(_last_run(status))
    if status.command.recurring:
        details.append(cadence_text(status))
    if status.changed:
        details.append("source changed since its last successful run")
    return f" {MARKS[status.shown_state]} {status.command.name:<{width}}  {'; '.join(details)}"


def cadence_text(status: CommandStatus) -> str:
    """``every 1 h, late since 2026-12-01 19:10:58``: what is expected of a recurring
    command, then ``alarm_text()`` when something is wrong."""
    command = status.command
    expected = []
    if command.expected_every is not None:
        expected.append(f"every {human_duration(command.expected_every)}")
    if command.expected_duration_max is not None:
        expected.append(f"at most {human_duration(command.expected_duration_max)}")
    alarm = status.alarm_text()
    return f"expected {' and '.join(expected)}" + (
        f": {alarm.upper()[:1]}{alarm[1:]}" if alarm else ""
    )


def alarm_lines(statuses: Iterable[CommandStatus], schema: str | None = None) -> list[str]:
    """One line per recurring command with an alarm (``show_managed_commands --check-cadence``):
    ``hourly_sync: late since 2026-12-01 19:10:58``, with ``[schema]`` in tenants."""
    where = f" [{schema}]" if schema is not None else ""
    return [f"{s.command.name}{where}: {s.alarm_text()}" for s in statuses if s.alarms]


def changed(statuses: Iterable[CommandStatus]) -> list[CommandStatus]:
    """The done run_once commands whose source changed since their last successful run."""
    return [s for s in statuses if s.state == CommandState.DONE and s.changed]


def stale(statuses: Iterable[CommandStatus], days: float) -> list[CommandStatus]:
    """The run_once commands whose newest success started more than ``days`` days ago."""
    before = timezone.now() - datetime.timedelta(days=days)
    return [
        s
        for s in statuses
        if s.state == CommandState.DONE
        and s.last_success is not None
        and s.last_success.executed_at < before
    ]


def orphans_header(count: int) -> str:
    return (
        f"{plural(count, 'command')} with recorded runs but no code "
        f"(deleted, or renamed without replaces):"
    )


def orphan_lines(orphans: Sequence[Orphan]) -> list[str]:
    """One line per orphan: its name, how many runs, and its last run."""
    width = max(len(orphan.name) for orphan in orphans)
    return [
        f"  {orphan.name:<{width}}  {plural(orphan.runs, 'run')}, the last "
        f"{orphan.last_run.status} {local_time(orphan.last_run.executed_at)}"
        + (f" in scope '{orphan.last_run.scope}'" if orphan.last_run.scope else "")
        for orphan in orphans
    ]


def orphan_json(orphan: Orphan) -> dict[str, Any]:
    """The JSON object ``show_managed_commands --orphans --json`` prints for one orphan."""
    run = orphan.last_run
    return {
        "name": orphan.name,
        "app_label": run.app_label,
        "runs": orphan.runs,
        "last_status": run.status,
        "last_run_at": run.executed_at.isoformat(),
        "last_scope": run.scope,
    }


def _last_run(status: CommandStatus) -> str:
    run = status.last_run
    if run is None:
        return "never run"
    if status.running:
        since = f"running since {local_time(run.executed_at)}"
        if run.tick_count is None:  # no batch loop has reported yet
            return since
        return f"{since} · {describe(run.tick_count, run.tick_total, run.tick_rate)}"
    if status.gone:
        gone = (
            f"gone: {describe_gone(run, status.gone)} "
            f"(recorded running since {local_time(run.executed_at)})"
        )
        if run.tick_count is None:
            return gone
        # A dead process has no rate, so no ETA.
        return f"{gone} · {describe(run.tick_count, run.tick_total, None)}"
    if status.outcome_unknown:
        return (
            f"outcome unknown {local_time(run.executed_at)}: run #{run.pk} ended, but its end "
            f"could not be recorded"
        )
    if status.queued:
        enqueued = run.enqueued_at or run.executed_at
        waited = human_duration((timezone.now() - enqueued).total_seconds())
        return f"queued for a task worker since {local_time(enqueued)} ({waited} ago)"
    took = f" ({run.duration:.2f} s)" if run.duration is not None else ""
    return f"{run.status} {local_time(run.executed_at)}{took}"


def as_json(status: CommandStatus) -> dict[str, Any]:
    """The JSON object ``show_managed_commands --json`` prints for one command."""
    run, success = status.last_run, status.last_success
    return {
        **_command_json(status.command),
        "phase": status.command.phase,
        "tags": sorted(status.command.tags),
        "unapplied_migrations": sorted(status.unapplied_migrations),
        "state": status.state,
        "running": status.running,
        "gone": status.gone,
        "last_heard_at": status.last_heard.isoformat() if status.last_heard else None,
        "outcome_unknown": status.outcome_unknown,
        "queued": status.queued,
        "last_status": run.status if run else None,
        "last_run_at": run.executed_at.isoformat() if run else None,
        "last_duration": run.duration if run else None,
        "last_success_at": success.executed_at.isoformat() if success else None,
        "changed": status.changed,
        "progress": (
            figures(run.tick_count, run.tick_total, None if status.gone else run.tick_rate)
            if run
            else None
        ),
        "resumed_from": run.resumed_from_id if run else None,
        "last_dry_run": bool(run.dry_run) if run else None,
        "last_origin": run.origin if run else None,
        "last_metadata": run.metadata if run else None,
        "shown_state": status.shown_state,
        "expected_every": status.command.expected_every,
        "expected_grace": status.command.expected_grace,
        "expected_duration_max": status.command.expected_duration_max,
        "alarms": list(status.alarms),
        "late_since": status.late_since.isoformat() if status.late_since else None,
    }


def _command_json(command: Definition) -> dict[str, Any]:
    return {
        "name": command.name,
        "app_label": command.app_label,
        "run_once": command.run_once,
        "requires": list(command.requires),
    }


# Mermaid class styles: one per state a command shows, then the nodes that are not commands.
_MIGRATION = "migration"


_UNKNOWN = "unknown"


_STYLES = {
    CommandState.DONE: "fill:#d3f9d8,stroke:#2b8a3e",
    CommandState.PENDING: "fill:#fff3bf,stroke:#e67700",
    CommandState.FAILED: "fill:#ffe3e3,stroke:#c92a2a",
    CommandState.RUNNING: "fill:#d0ebff,stroke:#1971c2",
    CommandState.GONE: "fill:#ffe3e3,stroke:#1971c2,stroke-dasharray:4",
    CommandState.OUTCOME_UNKNOWN: "fill:#ffe8cc,stroke:#d9480f,stroke-dasharray:4",
    CommandState.QUEUED: "fill:#e7f5ff,stroke:#1971c2,stroke-dasharray:4",
    CommandState.REPEATABLE: "fill:#f1f3f5,stroke:#868e96",
    CommandState.LATE: "fill:#fff3bf,stroke:#c92a2a",
    CommandState.OVERRUNNING: "fill:#d0ebff,stroke:#c92a2a",
    _MIGRATION: "fill:#f3f0ff,stroke:#6741d9",
    _UNKNOWN: "fill:#ffffff,stroke:#c92a2a,stroke-dasharray:4",
}


def mermaid(statuses: Iterable[CommandStatus]) -> str:
    """The ``requires`` graph as a Mermaid flowchart: an arrow runs from a requirement
    to the command that needs it; commands are grouped by app and colored by the state
    they show.
    """
    statuses = list(statuses)
    known = {s.command.name for s in statuses}
    lines = ["flowchart LR"]
    for app_label, group in _grouped(statuses):
        lines.append(f'    subgraph app_{app_label}["{app_label}"]')
        for status in group:
            name = status.command.name
            lines.append(f'        {_node_id("cmd_", name)}["{name}"]:::{status.shown_state}')
        lines.append("    end")
    extra: dict[str, str] = {}
    edges = []
    for status in statuses:
        commands = set(split_requires(status.command.requires)[0])
        for entry in status.command.requires:
            if entry not in commands:
                node = _node_id("mig_", entry)
                extra.setdefault(node, f'    {node}[("{entry}")]:::{_MIGRATION}')
            else:
                node = _node_id("cmd_", entry)
                if entry not in known:
                    extra.setdefault(node, f'    {node}["{entry} (unknown)"]:::{_UNKNOWN}')
            edges.append(f"    {node} --> {_node_id('cmd_', status.command.name)}")
    lines += [extra[node] for node in sorted(extra)] + edges
    lines += [f"    classDef {name} {style}" for name, style in _STYLES.items()]
    return "\n".join(lines)


def _node_id(prefix: str, entry: str) -> str:
    # Prefixed, so that no name collides with a Mermaid keyword such as "end".
    return prefix + "".join(c if c.isalnum() else "_" for c in entry)


def pending_in(tenants: Sequence[TenantStatus]) -> dict[str, list[str]]:
    """Map each tenant's schema to its pending run_once commands; tenants with none are left out."""
    found = {
        t.schema: [s.command.name for s in t.statuses if s.state == CommandState.PENDING]
        for t in tenants
    }
    return {schema: names for schema, names in found.items() if names}


def matrix(
    tenants: Sequence[TenantStatus], pending: bool = False
) -> tuple[str, list[tuple[str, list[str]]]]:
    """``show_managed_commands --all-tenants``: one column per tenant, one line per command.

    Each cell is the command's ``shown_state`` in that tenant, ``-`` for a
    repeatable command (never pending nor done) that is not running or failed.

    Args:
        tenants: ``statuses_by_tenant()``.
        pending: Only the run_once commands pending in at least one tenant.

    Returns:
        The header line (the tenant schemas) and ``(app_label, lines)`` pairs, as ``by_app()``.
    """
    commands = _matrix_commands(tenants, pending)
    shown = [t.shown_states() for t in tenants]
    name_width = max((len(s.command.name) for s in commands), default=0)
    # "running" and "pending" are the widest cells but "outcome_unknown"; a
    # repeatable command shows "-".
    widths = [
        max(
            len(t.schema),
            len(CommandState.RUNNING),
            *(len(cell) for cell in found.values() if cell != CommandState.REPEATABLE),
        )
        for t, found in zip(tenants, shown, strict=True)
    ]

    def line(name: str, cells: list[str]) -> str:
        padded = "  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True))
        return f" {name:<{name_width}}  {padded}".rstrip()

    header = line("", [t.schema for t in tenants])
    groups = [
        (app_label, [line(s.command.name, _cells(s.command.name, shown)) for s in members])
        for app_label, members in _grouped(commands)
    ]
    return header, groups


def matrix_json(tenants: Sequence[TenantStatus], pending: bool = False) -> list[dict[str, Any]]:
    """``--all-tenants --json``: each command's definition and ``tenants``, schema -> the
    state it shows there."""
    shown = {t.schema: t.shown_states() for t in tenants}
    return [
        {
            **_command_json(s.command),
            "tenants": {schema: found[s.command.name] for schema, found in shown.items()},
        }
        for s in _matrix_commands(tenants, pending)
    ]


def _matrix_commands(tenants: Sequence[TenantStatus], pending: bool) -> list[CommandStatus]:
    # Every tenant lists the same commands in the same order; the first one names the rows.
    if not tenants:
        return []
    waiting = set().union(*pending_in(tenants).values())
    return [s for s in tenants[0].statuses if not pending or s.command.name in waiting]


def _cells(name: str, shown: list[dict[str, CommandState]]) -> list[str]:
    return ["-" if found[name] == CommandState.REPEATABLE else found[name] for found in shown]


class ReportingCommand(BaseCommand):
    """A ``BaseCommand`` whose ``say()`` lines ``--verbosity 0`` silences.

    Errors and the output asked for (a plan, JSON) are written as usual.
    """

    verbosity = 1

    def execute(self, *args: Any, **options: Any) -> str | None:
        self.verbosity = int(options.get("verbosity", 1))
        return super().execute(*args, **options)

    def say(self, message: str) -> None:
        """Write ``message`` to stdout unless the verbosity is 0."""
        if self.verbosity:
            self.stdout.write(message)


# --- after migrate ---

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
    edited = [status.command.name for status in changed(executor.statuses.values())]
    notice: Notice = []
    if pending:
        notice.append(
            (
                f"Pending run_once commands: {', '.join(pending)}",
                ["Run them in order with: python manage.py run_pending_commands"],
            )
        )
    if edited:
        notice.append(
            (
                f"Done run_once commands whose source changed since their last successful "
                f"run: {', '.join(edited)}",
                [
                    "Rerun those whose change matters with:",
                    *(f"  python manage.py {name} --rerun" for name in edited),
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
