"""Source code of a new managed command and of its test, as ``create_managed_command`` writes them.

The output is what ``ruff format`` would write (line length 100), with
``from __future__ import annotations`` first, so it passes strict lint settings.
"""

from __future__ import annotations

from collections.abc import Sequence

LINE_LENGTH = 100


def command_module(*, run_once: bool, requires: Sequence[str]) -> str:
    """Return ``<app>/management/commands/<name>.py``: a ``ManagedBaseCommand`` to fill in."""
    once_note = "  # skipped once a run succeeded; --rerun runs it again" if run_once else ""
    return (
        "from __future__ import annotations\n"
        "\n"
        "from typing import Any\n"
        "\n"
        "from managed_commands.base import ManagedBaseCommand\n"
        "\n"
        "\n"
        "class Command(ManagedBaseCommand):\n"
        '    help = "TODO: say what this command does."\n'
        f"    run_once = {run_once}{once_note}\n"
        f"{_list_assignment('    ', 'requires', requires)}"
        "\n"
        "    def handle(self, *args: Any, **options: Any) -> None:\n"
        "        # TODO: do the work here. Every run is timed, its output captured and\n"
        "        # recorded by ManagedBaseCommand: no bookkeeping code is needed.\n"
        '        self.stdout.write("Nothing done yet.")\n'
    )


def test_module(name: str, *, run_once: bool, requires: Sequence[str]) -> str:
    """Return a pytest module that tests command ``name`` with the testing kit, passing as is.

    It starts from a history where every required command already succeeded,
    so it passes even before those commands exist in the project.
    """
    required = [entry for entry in requires if "." not in entry]
    helpers = ["assert_succeeded"]
    helpers += ["assert_ran_once", "assert_skipped"] if run_once else ["assert_history"]
    if required:
        helpers.append("assert_refused")
    parts = [
        "from __future__ import annotations\n\n"
        + _import("managed_commands.testing.assertions", sorted(helpers))
        + "\n"
        + f"COMMAND = {_string(name)}\n"
        + (_list_assignment("", "REQUIRED_COMMANDS", required) if required else "")
    ]
    if required:
        parts.append(
            "def test_refused_until_its_requirements_succeeded(run_managed_command):\n"
            "    assert_refused(run_managed_command(COMMAND), missing=REQUIRED_COMMANDS)\n"
        )
    history = "".join(f"    command_history.succeeded({_string(entry)})\n" for entry in required)
    setup = (
        f"    # Start from a history where the required commands already succeeded.\n{history}\n"
        if required
        else ""
    )
    checks = (
        "    assert_skipped(run_managed_command(COMMAND))\n    assert_ran_once(COMMAND)\n"
        if run_once
        else "    assert_succeeded(run_managed_command(COMMAND))\n"
        '    assert_history(COMMAND, ["succeeded", "succeeded"])\n'
    )
    parts.append(
        f"def test_{'runs_once' if run_once else 'runs_every_time'}"
        f"(run_managed_command{', command_history' if required else ''}):\n"
        f"{setup}"
        "    result = run_managed_command(COMMAND)\n"
        "\n"
        "    assert_succeeded(result)\n"
        '    assert result.stdout == "Nothing done yet.\\n"\n'
        "    # TODO: check what the command changed.\n"
        f"{checks}"
    )
    return "\n\n".join(parts)


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list_assignment(indent: str, target: str, items: Sequence[str]) -> str:
    """``target = [...]`` on one line when it fits, else one item per line."""
    one_line = f"{indent}{target} = [{', '.join(_string(item) for item in items)}]\n"
    if len(one_line) - 1 <= LINE_LENGTH:
        return one_line
    body = "".join(f"{indent}    {_string(item)},\n" for item in items)
    return f"{indent}{target} = [\n{body}{indent}]\n"


def _import(module: str, names: Sequence[str]) -> str:
    one_line = f"from {module} import {', '.join(names)}\n"
    if len(one_line) - 1 <= LINE_LENGTH:
        return one_line
    body = "".join(f"    {name},\n" for name in names)
    return f"from {module} import (\n{body})\n"
