"""Mask secrets in the texts a run stores, never in what it shows live.

A secret given as an option is hidden in the run's ``parameters``; a command
that prints it, logs it or fails with it in an exception's message would
still store it in its output, stderr, error message or traceback. So when the
run ends, those texts are masked: the values of the options that
``parameters`` stores redacted (``parameters.redacted_options`` decides, for
both) and every match of ``MANAGED_COMMANDS["REDACT"]`` become ``********``.

Only the bounded head and tail that are stored are masked, so the cost does not
grow with what a command writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from managed_commands.runs.capture import BoundedText
from managed_commands.runs.parameters import REDACTED, redacted_options

#: Shorter option values are not masked: a value such as ``"1"`` or ``"abc"``
#: would mask ordinary text all over the output, and hides little anyway.
MIN_LENGTH = 4


class Redactor:
    """What one run masks in the texts it stores.

    Args:
        options: The run's options, as given to ``execute()``.
        sensitive: Option names stored redacted on top of the secret-looking
            ones (the command's ``sensitive_options`` and the setting's).
        patterns: The compiled ``REDACT`` patterns.
    """

    def __init__(
        self,
        options: Mapping[str, Any],
        sensitive: Iterable[str],
        patterns: Iterable[re.Pattern[str]],
    ) -> None:
        found = {v for name in redacted_options(options, sensitive) for v in _texts(options[name])}
        # Longest first: the alternation then masks a whole value rather than
        # another value that is a part of it.
        self._values = sorted((v for v in found if len(v) >= MIN_LENGTH), key=len, reverse=True)
        values = [re.compile("|".join(map(re.escape, self._values)))] if self._values else []
        self._patterns = (*values, *patterns)

    def stored(self, **texts: str | BoundedText) -> dict[str, str]:
        """Return each text as it is stored, masked; a ``BoundedText`` across its cut too."""
        return {name: self._masked(text) for name, text in texts.items()}

    def _masked(self, text: str | BoundedText) -> str:
        if isinstance(text, str):
            return self._text(text)
        head, tail = text.cut()
        if tail is None:
            return self._text(head)
        return self._head(self._text(head)) + text.marker() + self._tail(self._text(tail))

    def _text(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(_mask, text)
        return text

    def _head(self, head: str) -> str:
        """Mask the start of a value that the head ends with (the rest was dropped)."""
        values = self._values
        cut = max((k for v in values for k in range(1, len(v)) if head.endswith(v[:k])), default=0)
        return head[: len(head) - cut] + REDACTED if cut else head

    def _tail(self, tail: str) -> str:
        """Mask the end of a value that the tail starts with (the start was dropped)."""
        values = self._values
        cut = max(
            (k for v in values for k in range(1, len(v)) if tail.startswith(v[-k:])), default=0
        )
        return REDACTED + tail[cut:] if cut else tail


def _texts(value: Any) -> Iterator[str]:
    """The texts a value can be printed as: ``str()`` of a scalar, of each item of a list.

    A flag's ``True`` or ``False`` is no secret, and masking it would mask
    every "True" in the output.
    """
    if isinstance(value, bool):
        return
    if isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
        return
    yield str(value)


def _mask(match: re.Match[str]) -> str:
    # A pattern that can match nothing (r"\b", "x*") masks no empty places.
    return REDACTED if match.end() > match.start() else ""
