"""Human-readable forms of recorded values, shared by the admin and the commands,
among them how far a batch loop got, in words: one reading for the terminal line,
``show_managed_commands`` and the admin."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.utils import timezone

__all__ = ["describe", "eta_seconds", "figures"]


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


def eta_seconds(count: int, total: int | None, rate: float | None) -> float | None:
    """Seconds left at ``rate`` items per second, or None when it cannot be told."""
    if not total or not rate or rate <= 0:
        return None
    return max(total - count, 0) / rate


def describe(count: int, total: int | None, rate: float | None) -> str:
    """``62 % (1,240,000 / 2,000,000), ETA 4 min``, or ``1,240 done`` without a total."""
    if not total:
        return f"{count:,} done"
    percent = min(count * 100 // total, 100)
    text = f"{percent} % ({count:,} / {total:,})"
    eta = eta_seconds(count, total, rate)
    if eta is not None and count < total:
        text += f", ETA {_duration(eta)}"
    return text


def figures(count: int | None, total: int | None, rate: float | None) -> dict[str, Any] | None:
    """The progress of a run as JSON values, or None for a run without batch loops."""
    if count is None:
        return None
    return {
        "count": count,
        "total": total,
        "percent": min(count * 100 // total, 100) if total else None,
        "per_second": round(rate, 1) if rate else None,
        "eta_seconds": None if (eta := eta_seconds(count, total, rate)) is None else round(eta),
    }


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(round(seconds), 1)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
