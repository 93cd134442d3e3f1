"""Human-readable forms of recorded values, shared by the admin and the commands."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.utils import timezone


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


def local_time(moment: datetime.datetime) -> str:
    """A moment as ``2026-12-01 19:10:58``, in the current time zone when it is aware."""
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def plural(count: int, singular: str, plural: str = "") -> str:
    """The count and the word that agrees with it: ``"1 run"``, ``"3 runs"``.

    Args:
        count: How many.
        singular: The word for one.
        plural: The word for several, when it is not ``singular + "s"``.
    """
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
