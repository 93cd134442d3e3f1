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
_AS_IS = frozenset({type(None), bool, int})


def is_sensitive(name: str, extra: Iterable[str] = ()) -> bool:
    """Tell whether an option's value must never be stored in clear."""
    return _is_sensitive(name, _option_names(extra))


def _option_names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.lower().lstrip("-").replace("-", "_") for n in names)


def _is_sensitive(name: str, extra_names: frozenset[str]) -> bool:
    lowered = name.lower().lstrip("-")
    normal = lowered.replace("-", "_")
    return (
        not _SECRET_PARTS.isdisjoint(normal.split("_"))
        or any(s in lowered for s in _SECRET_SUBSTRINGS)
        or normal in extra_names
    )


def to_json(value: Any) -> Any:
    """Return ``value`` as JSON-ready data; what JSON cannot hold becomes text."""
    kind = type(value)
    # The exact types options almost always have first, then the general rules.
    if kind is str:
        return clean_text(value)
    if kind in _AS_IS:
        return value
    if kind is list or kind is tuple:
        return [to_json(v) for v in value]
    if kind is dict:
        return {clean_text(str(k)): to_json(v) for k, v in value.items()}
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


def redacted_options(options: Mapping[str, Any], sensitive: Iterable[str] = ()) -> set[str]:
    """Return the names of the options whose values are stored as ``REDACTED``.

    The one place that decides it: ``prepare`` hides these values in the
    parameters, and ``redact.Redactor`` masks them in the stored output, so a
    secret is hidden in both or in neither. A user option (not in
    ``BASE_OPTIONS``) set to a value counts when its name looks secret or is
    listed in ``sensitive``; ``sensitive`` is read once, and only if an option
    needs it.
    """
    extra_names: frozenset[str] | None = None
    hidden = set()
    for name, value in options.items():
        if name in BASE_OPTIONS or value is None:
            continue
        if extra_names is None:
            extra_names = _option_names(sensitive)
        if _is_sensitive(name, extra_names):
            hidden.add(name)
    return hidden


def prepare(
    args: Iterable[Any], options: Mapping[str, Any], sensitive: Iterable[str] = ()
) -> dict[str, Any]:
    """Return the JSON stored as a run's ``parameters``: positional args and user options."""
    hidden = redacted_options(options, sensitive)
    stored = {
        name: REDACTED if name in hidden else to_json(value)
        for name, value in options.items()
        if name not in BASE_OPTIONS
    }
    return {"args": to_json(list(args)), "options": stored}
