"""Turn a run's arguments into JSON that can always be stored, with secrets redacted."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from managed_commands.runs.sanitize import clean_text

REDACTED = "********"

# Options every command has; they say nothing about what the run did.
BASE_OPTIONS = frozenset(
    {
        "verbosity",
        "settings",
        "pythonpath",
        "traceback",
        "no_color",
        "force_color",
        "skip_checks",
        "stdout",
        "stderr",
        "rerun",
    }
)
_SECRET_PARTS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "key", "apikey", "credential", "credentials"}
)
_SECRET_SUBSTRINGS = ("password", "secret", "token")
_ENCODER = DjangoJSONEncoder()


def is_sensitive(name: str, extra: Iterable[str] = ()) -> bool:
    """Tell whether an option's value must never be stored in clear."""
    lowered = name.lower().lstrip("-")
    parts = set(lowered.replace("-", "_").split("_"))
    extra_names = {e.lower().lstrip("-").replace("-", "_") for e in extra}
    return (
        bool(parts & _SECRET_PARTS)
        or any(s in lowered for s in _SECRET_SUBSTRINGS)
        or lowered.replace("-", "_") in extra_names
    )


def to_json(value: Any) -> Any:
    """Return ``value`` as JSON-ready data; what JSON cannot hold becomes text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    try:
        encoded = _ENCODER.default(value)
    except TypeError:
        encoded = repr(value)
    return to_json(encoded) if not isinstance(encoded, str) else clean_text(encoded)


def prepare(
    args: Iterable[Any], options: Mapping[str, Any], sensitive: Iterable[str] = ()
) -> dict[str, Any]:
    """Return the JSON stored as a run's ``parameters``: positional args and user options."""
    sensitive = tuple(sensitive)
    stored = {
        name: REDACTED if is_sensitive(name, sensitive) and value is not None else to_json(value)
        for name, value in options.items()
        if name not in BASE_OPTIONS
    }
    return {"args": to_json(list(args)), "options": stored}
