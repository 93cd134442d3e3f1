"""``create_managed_command``: what it writes, and every refusal leaving the project untouched."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from importlib.util import find_spec
from pathlib import Path

import pytest
from django.core.management import get_commands

from managed_commands import scaffold
from managed_commands.testing.assertions import (
    assert_cursor,
    assert_refused,
    assert_resumed,
    assert_succeeded,
)
from managed_commands.testing.utils import run_command, run_interrupted
from tests.batchmodels.models import Item

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path, monkeypatch, settings):
    """An installed app of its own, in a temporary directory of a project set up for pytest."""
    label = f"scratch_{uuid.uuid4().hex[:8]}"
    root = tmp_path / label
    root.mkdir()
    (root / "__init__.py").write_text("")
    (tmp_path / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = tests.settings\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, label]
    return root


def snapshot(root):
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def create(*argv):
    return run_command("create_managed_command", *argv)


def test_writes_the_command_its_test_and_the_packages(app):
    result = create(app.name, "import_prices", "--run-once", "--requires", "load_catalog")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"Created {app.name}/management/__init__.py\n"
        f"Created {app.name}/management/commands/__init__.py\n"
        f"Created {app.name}/tests/__init__.py\n"
        f"Created {app.name}/management/commands/import_prices.py\n"
        f"Created {app.name}/tests/test_import_prices.py\n"
        f"Next: write handle() in {app.name}/management/commands/import_prices.py, "
        f"then check it with: pytest {app.name}/tests/test_import_prices.py\n"
    )
    assert result.stderr == (
        "Note: no installed app provides a command 'load_catalog' yet; "
        "'import_prices' is refused until 'load_catalog' has run successfully.\n"
    )
    command = (app / "management/commands/import_prices.py").read_text()
    assert command == scaffold.command_module(run_once=True, requires=["load_catalog"])
    assert "    run_once = True  # skipped once a run succeeded" in command
    assert '    requires = ["load_catalog"]\n' in command
    assert "time" not in command.replace("timed", "")  # no hand-written timing
    test = (app / "tests/test_import_prices.py").read_text()
    assert test == scaffold.test_module("import_prices", run_once=True, requires=["load_catalog"])
    assert '    command_history.succeeded("load_catalog")\n' in test
    assert (app / "management/__init__.py").read_text() == ""


def test_the_generated_command_is_managed_and_tracked(app, db):
    assert create(app.name, "import_prices", "--run-once", "--requires", "once").exit_code == 0
    get_commands.cache_clear()
    assert_refused(run_command("import_prices"), missing=["once"])
    run_command("once")
    row = assert_succeeded(run_command("import_prices"))
    assert (row.run_once, row.app_label, row.output) == (True, app.name, "Nothing done yet.\n")


def test_a_repeatable_command_without_requirements(app):
    assert create(app.name, "report").exit_code == 0
    command = (app / "management/commands/report.py").read_text()
    assert "    run_once = False\n    requires = []\n" in command
    test = (app / "tests/test_report.py").read_text()
    assert "def test_runs_every_time(run_managed_command):" in test
    assert "assert_refused" not in test and "command_history" not in test


def test_an_app_with_tests_py_gets_a_sibling_test_module(app):
    (app / "tests.py").write_text("# the app's tests\n")
    result = create(app.name, "report")
    assert result.stdout.splitlines()[2:4] == [
        f"Created {app.name}/management/commands/report.py",
        f"Created {app.name}/test_report.py",
    ]
    assert not (app / "tests").exists()


def test_an_existing_tests_package_is_used_as_is(app):
    (app / "tests").mkdir()
    (app / "tests/__init__.py").write_text("# mine\n")
    (app / "management").mkdir()
    (app / "management/__init__.py").write_text("# mine too\n")
    result = create(app.name, "report")
    assert result.stdout.splitlines()[:3] == [
        f"Created {app.name}/management/commands/__init__.py",
        f"Created {app.name}/management/commands/report.py",
        f"Created {app.name}/tests/test_report.py",
    ]
    assert (app / "tests/__init__.py").read_text() == "# mine\n"
    assert (app / "management/__init__.py").read_text() == "# mine too\n"


def test_a_plain_tests_folder_gets_no_init(app):
    (app / "tests").mkdir()
    assert create(app.name, "report").exit_code == 0
    assert sorted(p.name for p in (app / "tests").iterdir()) == ["test_report.py"]


def test_force_overwrites_only_the_generated_files(app):
    assert create(app.name, "report").exit_code == 0
    command = app / "management/commands/report.py"
    command.write_text("# edited\n")
    (app / "management/commands/__init__.py").write_text("# kept\n")
    (app / "models.py").write_text("# kept too\n")
    result = create(app.name, "report", "--run-once", "--force")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"Overwrote {app.name}/management/commands/report.py",
        f"Overwrote {app.name}/tests/test_report.py",
    ]
    assert "run_once = True" in command.read_text()
    assert (app / "management/commands/__init__.py").read_text() == "# kept\n"
    assert (app / "models.py").read_text() == "# kept too\n"


def test_force_allows_a_name_another_app_provides(app):
    result = create(app.name, "once", "--force")
    assert result.exit_code == 0, result.stderr
    assert (app / "management/commands/once.py").exists()


def test_iterate_writes_a_batch_loop_over_the_model_and_a_resume_test(app):
    result = create(app.name, "backfill_items", "--run-once", "--iterate", "batchmodels.Item")
    assert result.exit_code == 0, result.stderr
    command = (app / "management/commands/backfill_items.py").read_text()
    item = scaffold.iterated_model("batchmodels.Item")
    assert command == scaffold.command_module(run_once=True, requires=[], iterate=item)
    assert "from managed_commands import ManagedBaseCommand\n\nfrom tests.batchmodels." in command
    assert "from tests.batchmodels.models import Item\n" in command
    assert (
        "        for batch in self.iterate_batches(Item.objects.all(), batch_size=500):\n"
        "            # TODO: the work on one batch goes here, for example:\n"
        "            # Item.objects.filter(pk__in=[obj.pk for obj in batch]).update(...)\n"
    ) in command
    assert "resume = True" not in command  # a run_once command resumes anyway
    test = (app / "tests/test_backfill_items.py").read_text()
    assert test == scaffold.test_module("backfill_items", run_once=True, requires=[], iterate=item)
    assert "from managed_commands.testing.utils import run_interrupted\n" in test
    assert "def test_resumes_after_an_interruption(run_managed_command):" in test
    assert "    assert_resumed(result, from_=first)\n" in test


def test_iterate_a_model_of_an_installed_package(app):
    assert create(app.name, "touch_users", "--iterate", "auth.User").exit_code == 0
    command = (app / "management/commands/touch_users.py").read_text()
    # One section of third-party imports, sorted; a repeatable command resumes too.
    assert (
        "from django.contrib.auth.models import User\n"
        "from managed_commands import ManagedBaseCommand\n\n\n"
    ) in command
    assert "    run_once = False\n    resume = True  # a run that stopped early" in command


def test_iterate_a_model_named_like_a_name_of_the_command_module(monkeypatch):
    # A model called Command (or Any...) must not shadow the module's own names.
    monkeypatch.setattr(scaffold, "_TAKEN_NAMES", frozenset({"Item"}))
    item = scaffold.iterated_model("batchmodels.Item")
    command = scaffold.command_module(run_once=True, requires=[], iterate=item)
    assert "from tests.batchmodels.models import Item as ItemModel\n" in command
    assert "self.iterate_batches(ItemModel.objects.all(), batch_size=500)" in command


def test_the_generated_batch_loop_resumes_after_an_interruption(app, db):
    assert create(app.name, "backfill_items", "--iterate", "batchmodels.Item").exit_code == 0
    get_commands.cache_clear()
    Item.objects.bulk_create(Item(number=n) for n in range(1, 1201))

    first = run_interrupted("backfill_items", after_batches=1)
    assert_cursor(first, count=500, done=False)
    result = run_command("backfill_items")

    assert_resumed(result, from_=first)
    assert_cursor(result, count=1200, done=True)
    assert result.stdout == "Processed 700 rows.\n"
    assert assert_succeeded(run_command("backfill_items")).output == "Processed 1200 rows.\n"


def test_the_generated_batch_test_passes_as_generated(app, tmp_path):
    argv = [app.name, "backfill_items", "--iterate", "batchmodels.Item", "--requires", "once"]
    assert create(*argv).exit_code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MC_TEST_"))}
    env.update(
        MC_TEST_DB="sqlite",
        MC_TEST_SQLITE_DIR=str(tmp_path),
        MC_TEST_EXTRA_APPS=app.name,
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
    )
    tested = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-v", "-p", "no:randomly"),
            *("-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)),
            str(app / "tests/test_backfill_items.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    for name in (
        "test_refused_until_its_requirements_succeeded",
        "test_runs_every_time",
        "test_resumes_after_an_interruption",
    ):
        assert f"test_backfill_items.py::{name} PASSED" in tested.stdout


# -- refusals: a clear CommandError, and nothing written or changed ---------------------


def assert_refused_untouched(app, argv, message):
    (app / "models.py").write_text("# the app as it was\n")
    before = snapshot(app)
    result = create(*argv)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"CommandError: {message}\n"
    assert snapshot(app) == before


def test_refuses_an_app_that_is_not_installed(app):
    assert_refused_untouched(
        app,
        ["shop", "import_prices"],
        "No installed app with label 'shop'. Add it to INSTALLED_APPS, or use one of: admin, "
        "auth, batchmodels, contenttypes, managed_commands, messages, "
        f"{app.name}, sessions, staticfiles, testapp.",
    )


def test_refuses_an_app_installed_as_a_package(app):
    before = snapshot(Path(sys.modules["django.contrib.admin"].__file__).parent)
    assert_refused_untouched(app, ["admin", "import_prices"], _package_refusal())
    assert snapshot(Path(sys.modules["django.contrib.admin"].__file__).parent) == before


def _package_refusal():
    from django.apps import apps

    path = apps.get_app_config("admin").path
    return (
        f"App 'admin' is an installed package ({path}); "
        "create the command in one of your project's own apps."
    )


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", "x..y", "/tmp/abs"])
def test_refuses_a_path(app, name):
    assert_refused_untouched(
        app,
        [app.name, name],
        f"'{name}' is not a command name: it must not contain a path separator or '..'. "
        "Give the bare name, for example import_prices.",
    )


@pytest.mark.parametrize("name", ["1st", "import-prices", "a b", "", "price$"])
def test_refuses_a_name_that_is_not_an_identifier(app, name):
    assert_refused_untouched(
        app,
        [app.name, name],
        f"'{name}' is not a valid command name: use a Python identifier (letters, digits and "
        "underscores, not starting with a digit), for example import_prices.",
    )


@pytest.mark.parametrize("name", ["class", "import", "None", "async"])
def test_refuses_a_keyword(app, name):
    assert_refused_untouched(
        app,
        [app.name, name],
        f"'{name}' is a Python keyword and cannot be a module name; choose another name.",
    )


@pytest.mark.parametrize("name", ["x" * 248, "x" * 300, "é" * 124])
def test_refuses_a_name_too_long_for_a_file_name(app, name):
    assert_refused_untouched(
        app,
        [app.name, name],
        f"'{name[:20]}...' is too long for a command name ({len(name.encode())} bytes): its "
        "test module, test_<name>.py, must fit in a file name of 255 bytes, so the name may "
        "have 247 bytes at most. Choose a shorter name.",
    )


def test_the_longest_name_fits(app):
    name = "x" * 247
    assert create(app.name, name).exit_code == 0
    assert (app / "tests" / f"test_{name}.py").is_file()


@pytest.mark.parametrize("force", [False, True])
def test_a_failed_write_undoes_what_it_wrote(app, monkeypatch, force):
    if force:
        assert create(app.name, "report").exit_code == 0
        (app / "management/commands/report.py").write_text("# my work\n")
    (app / "models.py").write_text("# the app as it was\n")
    before = snapshot(app)
    write_text = Path.write_text

    def disk_full_at_the_test(path, *args, **kwargs):
        if path.name == "test_report.py":
            write_text(path, "half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_at_the_test)
    result = create(app.name, "report", *(["--force"] if force else []))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"CommandError: Could not write {app / 'tests/test_report.py'}: No space left on device. "
        "Nothing was written.\n"
    )
    assert snapshot(app) == before


def test_says_what_pytest_needs_to_find_the_settings(app):
    project = app.parent
    (project / "pytest.ini").unlink()
    result = create(app.name, "report")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(
        f"then check it with: pytest {app.name}/tests/test_report.py\n"
        "pytest needs your settings (pytest-django), and no pytest configuration here names "
        "them: create pytest.ini with\n"
        "  [pytest]\n"
        "  DJANGO_SETTINGS_MODULE = tests.settings\n"
        "or put that setting under [tool.pytest.ini_options] in pyproject.toml.\n"
    )
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-q"\n')
    result = create(app.name, "other")
    assert result.stdout.endswith(
        f"then check it with: pytest {app.name}/tests/test_other.py\n"
        f"pytest needs your settings (pytest-django), and {project / 'pyproject.toml'}, which "
        "it reads, does not name them: add to its [tool.pytest.ini_options] section\n"
        '  DJANGO_SETTINGS_MODULE = "tests.settings"\n'
    )
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nDJANGO_SETTINGS_MODULE = "tests.settings"\n'
    )
    result = create(app.name, "third")
    assert result.stdout.endswith(f"pytest {app.name}/tests/test_third.py\n")


def test_refuses_a_name_django_would_ignore(app):
    assert_refused_untouched(
        app,
        [app.name, "_private"],
        "'_private' starts with an underscore: Django ignores such command modules. "
        "Choose a name that starts with a letter.",
    )


@pytest.mark.parametrize(
    ("name", "owner"), [("once", "app 'tests.testapp'"), ("migrate", "Django")]
)
def test_refuses_a_name_an_installed_app_provides(app, name, owner):
    assert_refused_untouched(
        app,
        [app.name, name],
        f"A command named '{name}' already exists (from {owner}). "
        "Choose another name, or pass --force to write this one anyway.",
    )


def test_refuses_to_overwrite_the_command_of_its_own_app(app):
    assert create(app.name, "report").exit_code == 0
    (app / "management/commands/report.py").write_text("# my work\n")
    assert_refused_untouched(
        app,
        [app.name, "report"],
        f"A command named 'report' already exists (from app '{app.name}'). "
        "Choose another name, or pass --force to write this one anyway.",
    )


@pytest.mark.parametrize("layout", ["tests package", "tests.py"])
def test_refuses_an_existing_test_file(app, layout):
    if layout == "tests.py":
        (app / "tests.py").write_text("")
        existing = app / "test_report.py"
    else:
        existing = app / "tests" / "test_report.py"
        existing.parent.mkdir()
    existing.write_text("# someone's work\n")
    assert_refused_untouched(
        app,
        [app.name, "report"],
        f"Refusing to overwrite {existing}. "
        "Pass --force to replace the generated files (nothing else is touched).",
    )


def test_refuses_a_target_that_is_a_directory_even_with_force(app):
    (app / "tests/test_report.py").mkdir(parents=True)
    assert_refused_untouched(
        app,
        [app.name, "report", "--force"],
        f"Cannot write {app / 'tests/test_report.py'}: not a regular file.",
    )


@pytest.mark.parametrize("entry", ["a b", "shop.", ".0001", "a.b.c", "x/y"])
def test_refuses_a_malformed_requirement(app, entry):
    assert_refused_untouched(
        app,
        [app.name, "report", "--requires", "ok", entry],
        f"--requires {entry!r} is neither a command name (like load_catalog) "
        "nor a migration (like shop.0002_add_price).",
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "nope.Model",
            "--iterate 'nope.Model': no installed app with label 'nope' (installed: admin, ",
        ),
        (
            "batchmodels.Nope",
            "--iterate 'batchmodels.Nope': app 'batchmodels' has no model 'Nope' "
            "(its models: Item, Label).",
        ),
        (
            "Item",
            "--iterate 'Item' does not name a model: give app_label.ModelName, "
            "for example shop.Product.",
        ),
        ("batchmodels.Item.pk", "--iterate 'batchmodels.Item.pk' does not name a model: "),
    ],
)
def test_refuses_an_unknown_model(app, entry, message):
    (app / "models.py").write_text("# the app as it was\n")
    before = snapshot(app)
    result = create(app.name, "report", "--iterate", entry)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"CommandError: {message}")
    assert snapshot(app) == before


def test_refuses_a_command_requiring_itself(app):
    assert_refused_untouched(
        app, [app.name, "report", "--requires", "report"], "'report' cannot require itself."
    )


# -- the generated code passes this project's linter settings --------------------------


@pytest.mark.skipif(find_spec("ruff") is None, reason="ruff is not installed (dev extra)")
@pytest.mark.parametrize(
    "argv",
    [
        ["--run-once", "--requires", "load_catalog"],
        [],
        ["--requires", "load_catalog", "shop.0001_initial", "--requires", "other"],
        ["--run-once", "--requires", "shop.0002_" + "m" * 60],
        ["--requires", *(f"requirement_{i}_" + "r" * 40 for i in range(4))],
        ["--run-once", "--iterate", "batchmodels.Item"],
        ["--iterate", "auth.User", "--requires", "load_catalog"],
    ],
)
def test_generated_files_pass_ruff(app, argv):
    result = create(app.name, "n" * 60, *argv)
    assert result.exit_code == 0, result.stderr
    files = [str(p) for p in app.rglob("*.py")]
    ruff = [sys.executable, "-m", "ruff"]
    # Sorted as in a project: managed_commands is installed, the apps are its own.
    config = [
        *("--config", str(ROOT / "pyproject.toml"), "--no-cache"),
        *("--config", f"lint.isort.known-first-party = ['tests', '{app.name}']"),
        *("--config", "lint.isort.known-third-party = ['managed_commands']"),
    ]
    check = subprocess.run([*ruff, "check", *config, *files], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    form = subprocess.run(
        [*ruff, "format", "--check", *config, *files], capture_output=True, text=True
    )
    assert form.returncode == 0, form.stdout + form.stderr


def test_notes_requirements_nothing_can_meet_yet(app):
    result = create(
        app.name,
        "report",
        "--requires",
        "once",
        "managed_commands.0001_initial",
        "later",
        "managed_commands.0099_future",
    )
    assert result.exit_code == 0
    assert result.stderr == (
        "Note: no installed app provides a command 'later' yet; "
        "'report' is refused until 'later' has run successfully.\n"
        "Note: there is no migration 'managed_commands.0099_future' yet; 'report' is refused, "
        "and its generated test fails, until it exists and is applied.\n"
    )
    assert (
        '    requires = ["once", "managed_commands.0001_initial", "later", '
        '"managed_commands.0099_future"]\n'
    ) in (app / "management/commands/report.py").read_text()
