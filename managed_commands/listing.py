"""What ``show_managed_commands`` prints: the status lines, their JSON form, the Mermaid graph."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from managed_commands.status import DONE, PENDING, REPEATABLE, CommandStatus

#: The mark in front of each command, in the order they take precedence.
MARKS = {
    "running": "[R]",
    DONE: "[X]",
    "failed": "[F]",
    PENDING: "[ ]",
    REPEATABLE: "[-]",
}


def condition(status: CommandStatus) -> str:
    """One word for a command: running, done, failed (last run), pending or repeatable."""
    if status.running:
        return "running"
    if status.state == DONE:
        return DONE
    if status.failed_last:
        return "failed"
    return status.state


def requirement_text(status: CommandStatus) -> str:
    """The ``requires`` entries, each unapplied migration marked as such."""
    return ", ".join(
        f"{entry} (not applied)" if entry in status.unapplied_migrations else entry
        for entry in map(str, status.command.requires)
    )


def by_app(statuses: Iterable[CommandStatus]) -> list[tuple[str, list[str]]]:
    """Lines as ``show_managed_commands`` prints them, grouped by app label."""
    groups = []
    for app_label, group in itertools.groupby(statuses, key=lambda s: s.command.app_label):
        members = list(group)
        width = max(len(s.command.name) for s in members)
        groups.append((app_label, [_line(s, width) for s in members]))
    return groups


def _line(status: CommandStatus, width: int) -> str:
    details = []
    if status.command.requires:
        details.append(f"requires {requirement_text(status)}")
    details.append(_last_run(status))
    if status.changed:
        details.append("source changed since its last successful run")
    return f" {MARKS[condition(status)]} {status.command.name:<{width}}  {'; '.join(details)}"


def _last_run(status: CommandStatus) -> str:
    run = status.last_run
    if run is None:
        return "never run"
    if status.running:
        return f"running since {_when(run.executed_at)}"
    took = f" ({run.duration:.2f} s)" if run.duration is not None else ""
    return f"{run.status} {_when(run.executed_at)}{took}"


def _when(moment: datetime.datetime) -> str:
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def as_json(status: CommandStatus) -> dict[str, Any]:
    """The JSON object ``show_managed_commands --json`` prints for one command."""
    run, success = status.last_run, status.last_success
    return {
        "name": status.command.name,
        "app_label": status.command.app_label,
        "run_once": status.command.run_once,
        "requires": [str(entry) for entry in status.command.requires],
        "unapplied_migrations": sorted(status.unapplied_migrations),
        "state": status.state,
        "running": status.running,
        "last_status": run.status if run else None,
        "last_run_at": run.executed_at.isoformat() if run else None,
        "last_duration": run.duration if run else None,
        "last_success_at": success.executed_at.isoformat() if success else None,
        "changed": status.changed,
    }


_CLASSES = {
    "done": "fill:#d3f9d8,stroke:#2b8a3e",
    "pending": "fill:#fff3bf,stroke:#e67700",
    "failed": "fill:#ffe3e3,stroke:#c92a2a",
    "running": "fill:#d0ebff,stroke:#1971c2",
    "repeatable": "fill:#f1f3f5,stroke:#868e96",
    "migration": "fill:#f3f0ff,stroke:#6741d9",
    "unknown": "fill:#ffffff,stroke:#c92a2a,stroke-dasharray:4",
}


def mermaid(statuses: Iterable[CommandStatus]) -> str:
    """The ``requires`` graph as a Mermaid flowchart: an arrow runs from a requirement
    to the command that needs it; commands are grouped by app and colored by condition.
    """
    statuses = list(statuses)
    known = {s.command.name for s in statuses}
    lines = ["flowchart LR"]
    for app_label, group in itertools.groupby(statuses, key=lambda s: s.command.app_label):
        lines.append(f'    subgraph app_{app_label}["{app_label}"]')
        for status in group:
            name = status.command.name
            lines.append(f'        {_node_id(name)}["{name}"]:::{condition(status)}')
        lines.append("    end")
    extra: dict[str, str] = {}
    edges = []
    for status in statuses:
        for entry in map(str, status.command.requires):
            node = _node_id(entry)
            if "." in entry:
                extra.setdefault(node, f'    {node}[("{entry}")]:::migration')
            elif entry not in known:
                extra.setdefault(node, f'    {node}["{entry} (unknown)"]:::unknown')
            edges.append(f"    {node} --> {_node_id(status.command.name)}")
    lines += [extra[node] for node in sorted(extra)] + edges
    lines += [f"    classDef {name} {style}" for name, style in _CLASSES.items()]
    return "\n".join(lines)


def _node_id(entry: str) -> str:
    # Prefixed, so that no name collides with a Mermaid keyword such as "end".
    prefix = "mig_" if "." in entry else "cmd_"
    return prefix + "".join(c if c.isalnum() else "_" for c in entry)
