"""Capture what a run writes while still showing it live.

Every write goes through unchanged to the stream the caller chose (a
terminal, or the ``StringIO`` given to ``call_command``) and a copy goes to a
``BoundedText``, which keeps only the head and the tail, so memory stays
bounded however much a command writes.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, OutputWrapper

from managed_commands.runs.sanitize import clean_text


class BoundedText:
    """Keeps the first and last ``limit // 2`` characters written, and counts the rest.

    The tail may grow to twice its limit before it is cut back in one step, so
    a command writing many small pieces pays for one join per ``limit`` written
    rather than for a trim on every write.
    """

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head: list[str] = []
        self._head_size = 0
        self._tail: list[str] = []
        self._tail_size = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        if not text:
            return
        room = self._head_limit - self._head_size
        if room > 0:
            self._head.append(text[:room])
            self._head_size += min(room, len(text))
            text = text[room:]
            if not text:
                return
        if len(text) >= self._tail_limit:
            # Everything kept so far in the tail is pushed out by this one piece.
            self.dropped += self._tail_size + len(text) - self._tail_limit
            self._tail = [text[len(text) - self._tail_limit :]] if self._tail_limit else []
            self._tail_size = self._tail_limit
            return
        self._tail.append(text)
        self._tail_size += len(text)
        if self._tail_size > 2 * self._tail_limit:
            self._trim()

    def _trim(self) -> None:
        excess = self._tail_size - self._tail_limit
        if excess <= 0:
            return
        self.dropped += excess
        self._tail = ["".join(self._tail)[excess:]]
        self._tail_size = self._tail_limit

    def cut(self) -> tuple[str, str | None]:
        """Return the stored text either side of the cut, each cleaned: ``(head, tail)``.

        ``(whole text, None)`` when nothing was dropped. Kept apart so that what
        is done to the stored text (``redact``) can tell where the cut is.
        """
        self._trim()
        head = "".join(self._head)
        tail = "".join(self._tail)
        if not self.dropped:
            return clean_text(head + tail), None
        # No colour code or unstorable character spans the marker, so cleaning
        # each side apart cleans the same as cleaning the whole.
        return clean_text(head), clean_text(tail)

    def marker(self) -> str:
        """The line that stands for the dropped characters in the stored text."""
        return f"\n[... managed_commands: {self.dropped} characters not stored ...]\n"

    def getvalue(self) -> str:
        head, tail = self.cut()
        return head if tail is None else head + self.marker() + tail


class TeeStream(io.TextIOBase):
    """A text stream that writes to ``target`` and copies what it accepted to ``sink``."""

    def __init__(self, target: Any, sink: BoundedText) -> None:
        self._target = target
        self._sink = sink

    def write(self, text: str) -> int:
        self._target.write(text)
        self._sink.write(text)
        return len(text)

    def flush(self) -> None:
        if hasattr(self._target, "flush"):
            self._target.flush()

    def close(self) -> None:
        # The tee owns neither stream: closing it (as IOBase does when the tee is
        # collected, after every run) must not flush or close the caller's.
        pass

    def isatty(self) -> bool:
        return hasattr(self._target, "isatty") and bool(self._target.isatty())

    def fileno(self) -> int:
        return int(self._target.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._target, "errors", None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            # IOBase's own lookups (on every collection) are not the target's.
            raise AttributeError(name)
        return getattr(self._target, name)


class _SinkHandler(logging.Handler):
    def __init__(self, sink: BoundedText, level: int) -> None:
        super().__init__(level)
        self._sink = sink
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


class OutputCapture:
    """The stdout and stderr of one run."""

    def __init__(self, limit: int, log_level: int | None = None) -> None:
        self.stdout = BoundedText(limit)
        self.stderr = BoundedText(limit)
        self.log_level = log_level

    def tee(
        self, command: BaseCommand, options: Mapping[str, Any], process_streams: bool = True
    ) -> _Tee:
        """Tee ``command.stdout``/``stderr`` and ``sys.stdout``/``stderr`` for the block.

        With ``process_streams`` False, ``sys.stdout`` and ``sys.stderr`` are
        left alone (they are every thread's): only the command's own streams
        are captured.

        The block gets the ``stdout``/``stderr`` options to hand to
        ``BaseCommand.execute()`` in place of the caller's: a stream the caller
        gave is wrapped by ``execute()`` itself, so its tee is passed on rather
        than set here.
        """
        return _Tee(self, command, options, process_streams)


class _Tee:
    """``OutputCapture.tee()``: a plain class, as it is entered on every run."""

    def __init__(
        self,
        capture: OutputCapture,
        command: BaseCommand,
        options: Mapping[str, Any],
        process_streams: bool,
    ) -> None:
        self._capture = capture
        self._command = command
        self._options = options
        self._process_streams = process_streams
        self._handler: _SinkHandler | None = None

    def __enter__(self) -> dict[str, Any]:
        capture, command = self._capture, self._command
        self._saved = (command.stdout, command.stderr, sys.stdout, sys.stderr)
        streams: dict[str, Any] = {}
        for name, sink in (("stdout", capture.stdout), ("stderr", capture.stderr)):
            given = self._options.get(name)
            if given:
                streams[name] = TeeStream(given, sink)
            else:
                setattr(command, name, _tee_wrapper(getattr(command, name), sink))
        if self._process_streams:
            sys.stdout = TeeStream(sys.stdout, capture.stdout)
            sys.stderr = TeeStream(sys.stderr, capture.stderr)
        if capture.log_level:
            self._handler = _SinkHandler(capture.stderr, capture.log_level)
            logging.getLogger().addHandler(self._handler)
        return streams

    def __exit__(self, *exc_info: object) -> None:
        if self._handler:
            logging.getLogger().removeHandler(self._handler)
        command = self._command
        command.stdout, command.stderr, sys.stdout, sys.stderr = self._saved


def _tee_wrapper(wrapper: OutputWrapper, sink: BoundedText) -> OutputWrapper:
    """Wrap the stream under ``wrapper`` in a tee, keeping its ending and style."""
    teed = OutputWrapper(cast(TextIO, TeeStream(wrapper._out, sink)), ending=wrapper.ending)
    teed.style_func = wrapper.style_func
    return teed
