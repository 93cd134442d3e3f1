"""Plan and write a new managed command and its test (``create_managed_command``).

Everything is validated before anything is written: a refused request leaves
the project untouched.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import AppConfig, apps
from django.core.management import get_commands
from django.core.management.base import CommandError
from django.db.migrations.loader import MigrationLoader

from managed_commands.definition import split_requires

_MIGRATION_NAME = re.compile(r"\w+")
LINE_LENGTH = 100


@dataclass(frozen=True)
class Plan:
    """The files one ``create_managed_command`` call writes.

    Attributes:
        packages: ``__init__.py`` files to create (never overwritten).
        files: The generated modules by path: the command, then its test.
        overwrites: Those of ``files`` that exist and will be replaced (``--force``).
        notes: Requirements that cannot be met yet: no installed app provides
            the command, or the migration does not exist.
    """

    packages: list[Path]
    files: dict[Path, str]
    overwrites: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan(app_label: str, name: str, *, run_once: bool, requires: list[str], force: bool) -> Plan:
    """Validate a request and return what to write; raise ``CommandError`` when refused.

    Args:
        app_label: Label of the installed app that gets the command.
        name: Name of the command (its module name).
        run_once: Generate ``run_once = True``.
        requires: Command names and ``app_label.migration`` entries.
        force: Replace the generated files if they exist, and allow a name
            another installed app already provides.
    """
    app = _project_app(app_label)
    check_name(name)
    requires = list(dict.fromkeys(requires))
    for entry in requires:
        _check_requirement(name, entry)

    # Commands written since this process started count too (the stubs omit the cache).
    get_commands.cache_clear()  # type: ignore[attr-defined]
    commands = get_commands()
    owner = commands.get(name)
    if owner is not None and not force:
        raise CommandError(
            f"A command named '{name}' already exists (from {_app_title(owner)}). "
            f"Choose another name, or pass --force to write this one anyway."
        )
    root = Path(app.path)
    command_dir = root / "management" / "commands"
    command_file = command_dir / f"{name}.py"
    test_dir, test_packages = _test_location(root)
    test_file = test_dir / f"test_{name}.py"
    targets = [command_file, test_file]

    not_files = [path for path in targets if path.exists() and not path.is_file()]
    if not_files:
        raise CommandError(f"Cannot write {_listed(not_files)}: not a regular file.")
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        raise CommandError(
            f"Refusing to overwrite {_listed(existing)}. "
            f"Pass --force to replace the generated files (nothing else is touched)."
        )
    packages = [
        package
        for package in (
            root / "management" / "__init__.py",
            command_dir / "__init__.py",
            *test_packages,
        )
        if not package.exists()
    ]
    return Plan(
        packages=packages,
        files={
            command_file: command_module(run_once=run_once, requires=requires),
            test_file: test_module(name, run_once=run_once, requires=requires),
        },
        overwrites=existing,
        notes=_notes(name, requires, commands),
    )


def write(to_write: Plan) -> list[Path]:
    """Write the planned files and return their paths, packages first."""
    written = []
    try:
        for package in to_write.packages:
            package.parent.mkdir(parents=True, exist_ok=True)
            package.touch()
            written.append(package)
        for path, source in to_write.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise CommandError(f"Could not write {exc.filename}: {exc.strerror}.") from exc
    return written


def check_name(name: str) -> None:
    """Raise ``CommandError`` unless ``name`` can be the module of a management command."""
    if "/" in name or "\\" in name or ".." in name:
        raise CommandError(
            f"'{name}' is not a command name: it must not contain a path separator or '..'. "
            f"Give the bare name, for example import_prices."
        )
    if not name.isidentifier():
        raise CommandError(
            f"'{name}' is not a valid command name: use a Python identifier "
            f"(letters, digits and underscores, not starting with a digit), "
            f"for example import_prices."
        )
    if keyword.iskeyword(name):
        raise CommandError(
            f"'{name}' is a Python keyword and cannot be a module name; choose another name."
        )
    if name.startswith("_"):
        raise CommandError(
            f"'{name}' starts with an underscore: Django ignores such command modules. "
            f"Choose a name that starts with a letter."
        )


def _project_app(app_label: str) -> AppConfig:
    try:
        app = apps.get_app_config(app_label)
    except LookupError:
        labels = ", ".join(sorted(config.label for config in apps.get_app_configs()))
        raise CommandError(
            f"No installed app with label '{app_label}'. Add it to INSTALLED_APPS, "
            f"or use one of: {labels}."
        ) from None
    if {"site-packages", "dist-packages"} & set(Path(app.path).parts):
        raise CommandError(
            f"App '{app_label}' is an installed package ({app.path}); "
            f"create the command in one of your project's own apps."
        )
    return app


def _check_requirement(name: str, entry: str) -> None:
    commands, migrations = split_requires([entry])
    valid = all(command.isidentifier() for command in commands) and all(
        app_label.isidentifier() and _MIGRATION_NAME.fullmatch(migration) is not None
        for app_label, migration in migrations
    )
    if not valid:
        raise CommandError(
            f"--requires {entry!r} is neither a command name (like load_catalog) "
            f"nor a migration (like shop.0002_add_price)."
        )
    if entry == name:
        raise CommandError(f"'{name}' cannot require itself.")


def _notes(name: str, requires: list[str], commands: dict[str, str]) -> list[str]:
    """Say which requirements nothing in the project can meet yet (not an error: it may come)."""
    required, migrations = split_requires(requires)
    on_disk = MigrationLoader(None, ignore_no_migrations=True).disk_migrations if migrations else {}
    notes = [
        f"no installed app provides a command '{entry}' yet; "
        f"'{name}' is refused until '{entry}' has run successfully."
        for entry in required
        if entry not in commands
    ]
    notes += [
        f"there is no migration '{app_label}.{migration}' yet; "
        f"'{name}' is refused, and its generated test fails, until it exists and is applied."
        for app_label, migration in migrations
        if (app_label, migration) not in on_disk
    ]
    return notes


def _test_location(root: Path) -> tuple[Path, list[Path]]:
    """Where the app keeps its tests: a ``tests`` package, else beside ``tests.py``."""
    package = root / "tests"
    if (package / "__init__.py").exists():
        return package, []
    if (root / "tests.py").exists():
        return root, []
    if package.is_dir():
        return package, []  # a plain test folder, collected by pytest as it is
    return package, [package / "__init__.py"]


def _app_title(owner: str) -> str:
    return "Django" if owner == "django.core" else f"app '{owner}'"


def _listed(paths: list[Path]) -> str:
    return ", ".join(str(path) for path in paths)


# -- The generated source: what ``ruff format`` would write (line length 100),
# with ``from __future__ import annotations`` first, so it passes strict lint
# settings.


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
    required = split_requires(requires)[0]
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
