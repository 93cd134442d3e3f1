"""Human-readable forms of recorded values, shared by the admin and the commands."""

from __future__ import annotations

import json
from typing import Any


def human_duration(seconds: float | None) -> str:
    """Format a duration the way people read it.

    Returns:
        ``"850 ms"`` under a second, ``"2.4 s"`` under a minute, ``"3 min 05 s"``
        under an hour, ``"2 h 03 min"`` beyond, and ``"—"`` when unknown.
    """
    if seconds is None:
        return "—"
    if seconds < 0.9995:  # rounds to 1000 ms and above: show seconds instead
        return f"{round(seconds * 1000)} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60:02d} min"


def pretty_json(value: Any) -> str:
    """Indented JSON with non-ASCII text kept as is (plain text: escape it to show it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
