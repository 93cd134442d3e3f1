"""What a run keeps besides its outcome: its arguments and its output.

Arguments become JSON that can always be stored, with the options that look secret
(or are named in ``sensitive_options``) redacted; ``call_arguments()`` turns stored
arguments back into a command line to run again.

Output is captured while still shown live: every write goes through unchanged to
the stream the caller chose (a terminal, or the ``StringIO`` given to
``call_command``), and a copy goes to a ``BoundedText``, which keeps only the
head and the tail, so memory stays bounded. When the run ends, the kept texts are
cleaned for storage (terminal colours, NUL, lone surrogates) and masked: the values
of the redacted options and every match of ``MANAGED_COMMANDS["REDACT"]`` become
``********``. Only what is stored is masked, never what is shown live.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import sys
from argparse import Action, ArgumentParser, _AppendAction, _StoreAction
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.core.serializers.json import DjangoJSONEncoder

__all__ = ["call_arguments"]


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

    def last(self, size: int) -> tuple[str, bool]:
        """The last ``size`` characters written so far, and whether text came before them."""
        pieces: list[str] = []
        taken = 0
        for piece in reversed(self._head + self._tail if not self.dropped else self._tail):
            pieces.append(piece[-(size - taken) :])
            taken += len(pieces[-1])
            if taken >= size:
                break
        cut = bool(self.dropped) or taken < self._head_size + self._tail_size
        return "".join(reversed(pieces)), cut

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
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, os.PathLike):  # as typed: the parser reads it back the same
        return clean_text(os.fsdecode(value))
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
    parameters, and ``Redactor`` masks them in the stored output, so a
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

    def last(self, text: BoundedText, size: int) -> str:
        """The last ``size`` characters of ``text`` so far, masked as ``stored()`` masks them:
        what a running run's row shows before its end writes the whole."""
        tail, cut = text.last(size)
        masked = self._text(clean_text(tail))
        return self._tail(masked) if cut else masked

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


def call_arguments(
    name: str, parser: ArgumentParser, parameters: Any
) -> tuple[list[Any], dict[str, Any]]:
    """The ``args`` and ``options`` of ``call_command()`` for a run of command ``name``
    that recorded ``parameters`` (``{"args": [...], "options": {...}}``, or ``{}``).

    Raises:
        CommandError: the parameters are not those of a managed run, or a
            secret among them was redacted (the run cannot be repeated as it was).
    """
    args, options = _recorded(name, parameters)
    redacted = sorted(option for option, value in options.items() if value == REDACTED)
    if redacted:
        raise CommandError(
            f"The run of '{name}' cannot be repeated: the value of "
            f"{', '.join(redacted)} was redacted when it was recorded."
        )
    command_line = _positionals(parser, args, options)
    keywords: dict[str, Any] = {}
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    for option, value in options.items():
        action = actions.get(option)
        if action is not None and value == action.default:
            continue
        tokens = _option_tokens(action, value) if action is not None else None
        if tokens is None:
            keywords[option] = value
        else:
            command_line += tokens
    return command_line, keywords


def _recorded(name: str, parameters: Any) -> tuple[list[Any], dict[str, Any]]:
    if not parameters:
        return [], {}
    args = parameters.get("args", []) if isinstance(parameters, Mapping) else None
    options = parameters.get("options", {}) if isinstance(parameters, Mapping) else None
    if (
        not isinstance(args, list)
        or not isinstance(options, dict)
        or set(parameters)
        - {
            "args",
            "options",
        }
    ):
        raise CommandError(
            f"The run of '{name}' cannot be repeated: its parameters were not recorded "
            f"by a managed run."
        )
    return args, dict(options)


def _positionals(parser: ArgumentParser, args: list[Any], options: dict[str, Any]) -> list[Any]:
    """The positional arguments in the parser's order; taken out of ``options``."""
    command_line: list[Any] = []
    for action in parser._actions:
        if action.option_strings:
            continue
        # A command's ``args`` positional reaches execute() as *args, recorded apart.
        value = args if action.dest == "args" else options.pop(action.dest, None)
        if value is not None:
            command_line += _as_texts(value)
    return command_line


def _option_tokens(action: Action, value: Any) -> list[str] | None:
    """``--day 2026-01-01``: the command line of an option its parser converts; None
    for any other option (a flag, an untyped value), passed as a keyword instead."""
    converts = action.type is not None and type(action) in (_StoreAction, _AppendAction)
    if not converts or value is None or not _is_text_like(value):
        return None
    flag = max(action.option_strings, key=len)
    if isinstance(action, _AppendAction):
        if not isinstance(value, list):
            return None
        return [token for item in value for token in (flag, *_as_texts(item))]
    return [flag, *_as_texts(value)]


def _as_texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _is_text_like(value: Any) -> bool:
    """Whether ``value`` (or each item, for a list) reads back from its text."""
    items = value if isinstance(value, list) else [value]
    return all(
        isinstance(item, str | int | float) and not isinstance(item, bool)
        for element in items
        for item in (element if isinstance(element, list) else [element])
    )
