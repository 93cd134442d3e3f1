"""Plan and write a new managed command and its test (``create_managed_command``).

Everything is validated before anything is written: a refused request leaves
the project untouched.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import AppConfig, apps
from django.core.management import get_commands
from django.core.management.base import CommandError
from django.db.migrations.loader import MigrationLoader
from django.db.models import Model

from managed_commands.definition import split_requires

_MIGRATION_NAME = re.compile(r"\w+")
LINE_LENGTH = 100
#: The longest file name most file systems accept, in bytes.
NAME_MAX = 255


@dataclass(frozen=True)
class Iterated:
    """The model a generated command loops over in batches (``--iterate``).

    Attributes:
        label: ``app_label.ModelName`` as given.
        module: The module to import it from.
        name: Its class name, as imported.
        alias: The name the generated code uses (its class name unless that clashes).
        manager: Its default manager's attribute, usually ``objects``.
        installed_package: Whether its app is an installed package (import
            sorting puts it beside ``managed_commands``, not after it).
    """

    label: str
    module: str
    name: str
    alias: str
    manager: str
    installed_package: bool

    def imported(self) -> str:
        return self.name if self.alias == self.name else f"{self.name} as {self.alias}"


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


def plan(
    app_label: str,
    name: str,
    *,
    run_once: bool,
    requires: list[str],
    force: bool,
    iterate: str | None = None,
) -> Plan:
    """Validate a request and return what to write; raise ``CommandError`` when refused.

    Args:
        app_label: Label of the installed app that gets the command.
        name: Name of the command (its module name).
        run_once: Generate ``run_once = True``.
        requires: Command names and ``app_label.migration`` entries.
        force: Replace the generated files if they exist, and allow a name
            another installed app already provides.
        iterate: ``app_label.ModelName`` of a model the command loops over in
            batches (``iterate_batches()``), or None.
    """
    app = _project_app(app_label)
    check_name(name)
    requires = list(dict.fromkeys(requires))
    for entry in requires:
        _check_requirement(name, entry)
    iterated = iterated_model(iterate) if iterate is not None else None

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
            command_file: command_module(run_once=run_once, requires=requires, iterate=iterated),
            test_file: test_module(name, run_once=run_once, requires=requires, iterate=iterated),
        },
        overwrites=existing,
        notes=_notes(name, requires, commands),
    )


def write(to_write: Plan) -> list[Path]:
    """Write the planned files and return their paths, packages first.

    When a write fails (a full disk, a read-only folder), what was written is
    undone: new files and folders removed, replaced files restored.
    """
    targets = [*to_write.packages, *to_write.files]
    new_folders = sorted(
        {folder for path in targets for folder in path.parents if not folder.exists()},
        key=lambda folder: len(folder.parts),
    )
    replaced = {path: path.read_bytes() for path in to_write.overwrites}
    written = []
    try:
        for folder in new_folders:
            folder.mkdir(exist_ok=True)
        for package in to_write.packages:
            package.touch()
            written.append(package)
        for path, source in to_write.files.items():
            path.write_text(source, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        _undo(targets, replaced, new_folders)
        raise CommandError(
            f"Could not write {exc.filename}: {exc.strerror}. Nothing was written."
        ) from exc
    return written


# pytest's configuration files, in the order it looks for them in each folder, with
# the section that makes one its own (None: the file is pytest's whatever it holds).
_PYTEST_CONFIGS = (
    ("pytest.ini", None),
    (".pytest.ini", None),
    ("pyproject.toml", "[tool.pytest.ini_options]"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
)


def pytest_settings_hint(test_file: Path, settings_module: str) -> list[str]:
    """What to add so that ``pytest test_file`` finds the Django settings; [] when
    the pytest configuration it would read names them (pytest-django's
    ``DJANGO_SETTINGS_MODULE``, or ``--ds``)."""
    for folder in test_file.parents:
        for name, section in _PYTEST_CONFIGS:
            text = _read(folder / name)
            if text is None or (section is not None and section not in text):
                continue
            if re.search(r"\bDJANGO_SETTINGS_MODULE\b|--ds\b", text):
                return []
            value = f'"{settings_module}"' if name == "pyproject.toml" else settings_module
            return [
                f"pytest needs your settings (pytest-django), and {folder / name}, which it "
                f"reads, does not name them: add to its {section or '[pytest]'} section",
                f"  DJANGO_SETTINGS_MODULE = {value}",
            ]
    return [
        "pytest needs your settings (pytest-django), and no pytest configuration here "
        "names them: create pytest.ini with",
        "  [pytest]",
        f"  DJANGO_SETTINGS_MODULE = {settings_module}",
        "or put that setting under [tool.pytest.ini_options] in pyproject.toml.",
    ]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _undo(targets: list[Path], replaced: dict[Path, bytes], new_folders: list[Path]) -> None:
    """Restore the ``replaced`` files, remove the other ``targets``, then the new folders."""
    for path in targets:
        with contextlib.suppress(OSError):
            if path in replaced:
                path.write_bytes(replaced[path])
            else:
                path.unlink(missing_ok=True)
    for folder in reversed(new_folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


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
    # The longest file written is the test module, test_<name>.py.
    longest = NAME_MAX - len("test_.py")
    size = len(os.fsencode(name))
    if size > longest:
        raise CommandError(
            f"'{name[:20]}...' is too long for a command name ({size} bytes): its test module, "
            f"test_<name>.py, must fit in a file name of {NAME_MAX} bytes, so the name may have "
            f"{longest} bytes at most. Choose a shorter name."
        )


def iterated_model(label: str) -> Iterated:
    """Find the model ``label`` (``app_label.ModelName``) names; ``CommandError`` if none."""
    app_label, dot, model_name = label.partition(".")
    if not (dot and app_label and model_name.isidentifier()):
        raise CommandError(
            f"--iterate {label!r} does not name a model: give app_label.ModelName, "
            f"for example shop.Product."
        )
    try:
        app = apps.get_app_config(app_label)
    except LookupError:
        labels = ", ".join(sorted(config.label for config in apps.get_app_configs()))
        raise CommandError(
            f"--iterate {label!r}: no installed app with label '{app_label}' (installed: {labels})."
        ) from None
    try:
        model = app.get_model(model_name)
    except LookupError:
        names = ", ".join(sorted(model.__name__ for model in app.get_models())) or "none"
        raise CommandError(
            f"--iterate {label!r}: app '{app_label}' has no model '{model_name}' "
            f"(its models: {names})."
        ) from None
    return _iterated(label, app, model)


def _iterated(label: str, app: AppConfig, model: type[Model]) -> Iterated:
    # From the app's models module when it exposes the class, as code usually imports it.
    models_module = app.models_module
    if models_module is not None and getattr(models_module, model.__name__, None) is model:
        module = models_module.__name__
    else:
        module = model.__module__
    name = model.__name__
    alias = f"{name}Model" if name in _TAKEN_NAMES else name
    return Iterated(
        label=label,
        module=module,
        name=name,
        alias=alias,
        manager=model._default_manager.name,
        installed_package=_is_installed_package(app),
    )


#: Names the generated command module defines or imports itself.
_TAKEN_NAMES = frozenset({"Any", "Command", "ManagedBaseCommand", "annotations"})


def _is_installed_package(app: AppConfig) -> bool:
    return bool({"site-packages", "dist-packages"} & set(Path(app.path).parts))


def _project_app(app_label: str) -> AppConfig:
    try:
        app = apps.get_app_config(app_label)
    except LookupError:
        labels = ", ".join(sorted(config.label for config in apps.get_app_configs()))
        raise CommandError(
            f"No installed app with label '{app_label}'. Add it to INSTALLED_APPS, "
            f"or use one of: {labels}."
        ) from None
    if _is_installed_package(app):
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


def command_module(
    *, run_once: bool, requires: Sequence[str], iterate: Iterated | None = None
) -> str:
    """Return ``<app>/management/commands/<name>.py``: a ``ManagedBaseCommand`` to fill in.

    With ``iterate``, its ``handle()`` loops over that model in batches, and a
    command that is not run_once gets ``resume = True``.
    """
    once_note = "  # skipped once a run succeeded; --rerun runs it again" if run_once else ""
    resume = (
        "    resume = True  # a run that stopped early continues where it was (--restart: anew)\n"
        if iterate is not None and not run_once
        else ""
    )
    return (
        "from __future__ import annotations\n"
        "\n"
        "from typing import Any\n"
        "\n"
        f"{_command_imports(iterate)}"
        "\n"
        "\n"
        "class Command(ManagedBaseCommand):\n"
        '    help = "TODO: say what this command does."\n'
        f"    run_once = {run_once}{once_note}\n"
        f"{resume}"
        f"{_list_assignment('    ', 'requires', requires)}"
        "\n"
        "    def handle(self, *args: Any, **options: Any) -> None:\n"
        f"{_handle_body(iterate)}"
    )


def _command_imports(iterate: Iterated | None) -> str:
    base = "from managed_commands import ManagedBaseCommand\n"
    if iterate is None:
        return base
    model = _import(iterate.module, [iterate.imported()])
    if iterate.installed_package:  # one section of third-party imports, sorted by module
        return "".join(sorted([base, model], key=lambda line: line.split()[1]))
    return f"{base}\n{model}"  # the project's own module: a section after


def _handle_body(iterate: Iterated | None) -> str:
    if iterate is None:
        return (
            "        # TODO: do the work here. Every run is timed, its output captured and\n"
            "        # recorded by ManagedBaseCommand: no bookkeeping code is needed.\n"
            '        self.stdout.write("Nothing done yet.")\n'
        )
    manager = f"{iterate.alias}.{iterate.manager}"
    rows = ""
    loop = f"        for batch in self.iterate_batches({manager}.all(), batch_size=500):\n"
    example = f"            # {manager}.filter(pk__in=[obj.pk for obj in batch]).update(...)\n"
    if len(loop) - 1 > LINE_LENGTH or len(example) - 1 > LINE_LENGTH:  # a very long name
        rows = f"        rows = {manager}.all()\n"
        loop = "        for batch in self.iterate_batches(rows, batch_size=500):\n"
        example = "            # rows.filter(pk__in=[obj.pk for obj in batch]).update(...)\n"
    return (
        "        # Each batch commits with the run's cursor: a run that stops early (Ctrl-C,\n"
        "        # a failure, stop_managed_command) resumes after the last batch done.\n"
        f"{rows}"
        "        done = 0\n"
        f"{loop}"
        "            # TODO: the work on one batch goes here, for example:\n"
        f"{example}"
        "            done += len(batch)\n"
        '        self.stdout.write(f"Processed {done} rows.")\n'
    )


def test_module(
    name: str, *, run_once: bool, requires: Sequence[str], iterate: Iterated | None = None
) -> str:
    """Return a pytest module that tests command ``name`` with the testing kit, passing as is.

    It starts from a history where every required command already succeeded,
    so it passes even before those commands exist in the project. With
    ``iterate``, it also interrupts a run after its first batch and checks
    that the next run resumes it.
    """
    required = split_requires(requires)[0]
    helpers = ["assert_succeeded"]
    helpers += ["assert_ran_once", "assert_skipped"] if run_once else ["assert_history"]
    if required:
        helpers.append("assert_refused")
    if iterate is not None:
        helpers.append("assert_resumed")
    imports = _import("managed_commands.testing.assertions", sorted(helpers))
    if iterate is not None:
        imports += _import("managed_commands.testing.utils", ["run_interrupted"])
    parts = [
        "from __future__ import annotations\n\n"
        + imports
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
    fixtures = f"(run_managed_command{', command_history' if required else ''})"
    checks = (
        "    assert_skipped(run_managed_command(COMMAND))\n    assert_ran_once(COMMAND)\n"
        if run_once
        else "    assert_succeeded(run_managed_command(COMMAND))\n"
        '    assert_history(COMMAND, ["succeeded", "succeeded"])\n'
    )
    output = (
        '    assert result.stdout.startswith("Processed ")\n'
        if iterate is not None
        else '    assert result.stdout == "Nothing done yet.\\n"\n'
    )
    parts.append(
        f"def test_{'runs_once' if run_once else 'runs_every_time'}{fixtures}:\n"
        f"{setup}"
        "    result = run_managed_command(COMMAND)\n"
        "\n"
        "    assert_succeeded(result)\n"
        f"{output}"
        "    # TODO: check what the command changed.\n"
        f"{checks}"
    )
    if iterate is not None:
        parts.append(
            f"def test_resumes_after_an_interruption{fixtures}:\n"
            f"{setup}"
            "    # TODO: create more rows than one batch (500), so that the interruption\n"
            "    # falls in the middle of the loop.\n"
            "    first = run_interrupted(COMMAND, after_batches=1)  # as Ctrl-C would\n"
            "\n"
            "    result = run_managed_command(COMMAND)\n"
            "\n"
            "    assert_succeeded(result)\n"
            "    assert_resumed(result, from_=first)\n"
            "    # TODO: check that every row was processed exactly once.\n"
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
