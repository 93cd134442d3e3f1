"""How far a batch loop got, in words: one reading for the terminal line,
``show_managed_commands`` and the admin."""

from __future__ import annotations

from typing import Any

__all__ = ["describe", "eta_seconds", "figures"]


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
