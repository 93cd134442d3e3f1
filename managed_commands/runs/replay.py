"""Turn the ``parameters`` a run recorded back into arguments for ``call_command()``.

What running a command again with the same parameters hands to
``enqueue_command()``. Positional arguments, and options the parser converts
(``type=``), go back as the command line they came from, so the command's own
parser converts them again (a date stays a date, not its text); flags and plain
values go back as keyword options. Options left at their default are left out.
"""

from __future__ import annotations

from argparse import Action, ArgumentParser, _AppendAction, _StoreAction
from collections.abc import Mapping
from typing import Any

from django.core.management.base import CommandError

from managed_commands.runs.parameters import REDACTED

__all__ = ["call_arguments"]


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
            command_line += _texts(value)
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
        return [token for item in value for token in (flag, *_texts(item))]
    return [flag, *_texts(value)]


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _is_text_like(value: Any) -> bool:
    """Whether ``value`` (or each item, for a list) reads back from its text."""
    items = value if isinstance(value, list) else [value]
    return all(
        isinstance(item, str | int | float) and not isinstance(item, bool)
        for element in items
        for item in (element if isinstance(element, list) else [element])
    )
