"""Make text safe to store on every backend, without changing what was shown."""

from __future__ import annotations

import hashlib
import re

NAME_LIMIT = 255

# Terminal colour codes added by Django's styles when writing to a TTY.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# NUL cannot be stored in PostgreSQL text; lone surrogates (invalid UTF-8 read
# with surrogateescape) cannot be encoded at all.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop colour codes and replace unstorable characters with U+FFFD."""
    if "\x1b" in text:
        text = _ANSI_ESCAPE.sub("", text)
    if text.isascii():  # a flag of the string, not a scan
        # NUL is the only unstorable ASCII character (surrogates are not ASCII).
        return text.replace("\x00", "\ufffd")
    return _UNSTORABLE.sub("\ufffd", text)


def clip_name(name: str, limit: int = NAME_LIMIT) -> str:
    """Fit a name into ``limit`` characters, keeping distinct names distinct.

    A longer name keeps its start and ends with ``~`` and 8 hex digits of its hash.
    """
    name = clean_text(name)
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[: limit - 9]}~{digest}"
