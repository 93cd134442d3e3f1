"""The issue's "done when": a fresh Django project, a generated command, pytest, manage.py."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import pytest

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]


def run(cwd, *argv, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MC_TEST_"))}
    result = subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result


def test_generate_then_pytest_then_manage_py(tmp_path):
    run(tmp_path, "-m", "django", "startproject", "mysite", ".")
    run(tmp_path, "manage.py", "startapp", "shop")
    settings = tmp_path / "mysite" / "settings.py"
    text = settings.read_text()
    settings.write_text(
        text.replace(
            "INSTALLED_APPS = [", 'INSTALLED_APPS = [\n    "managed_commands",\n    "shop",'
        )
    )
    run(tmp_path, "manage.py", "migrate", "-v0")

    created = run(
        tmp_path,
        "manage.py",
        "create_managed_command",
        "shop",
        "import_prices",
        "--run-once",
        "--requires",
        "load_catalog",
    )
    assert created.stdout.splitlines()[:4] == [
        "Created shop/management/__init__.py",
        "Created shop/management/commands/__init__.py",
        "Created shop/management/commands/import_prices.py",
        "Created shop/test_import_prices.py",  # startapp made shop/tests.py: a sibling
    ]
    # startproject writes no pytest configuration: pytest would not find the settings.
    assert created.stdout.splitlines()[5:] == [
        "pytest needs your settings (pytest-django), and no pytest configuration here names "
        "them: create pytest.ini with",
        "  [pytest]",
        "  DJANGO_SETTINGS_MODULE = mysite.settings",
        "or put that setting under [tool.pytest.ini_options] in pyproject.toml.",
    ]
    (tmp_path / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")

    tested = run(tmp_path, "-m", "pytest", "-v", "-p", "no:cacheprovider")
    assert "shop/test_import_prices.py::test_refused_until_its_requirements_succeeded PASSED" in (
        tested.stdout
    )
    assert "shop/test_import_prices.py::test_runs_once PASSED" in tested.stdout
    assert re.search(r"\b2 passed\b", tested.stdout), tested.stdout

    # Requiring a command that does not exist is a system-check error, so
    # manage.py refuses to run it before anything is recorded.
    unknown = run(tmp_path, "manage.py", "import_prices", check=False)
    assert unknown.returncode == 1
    assert "(managed_commands.E003) 'import_prices' requires 'load_catalog'" in unknown.stderr

    run(tmp_path, "manage.py", "create_managed_command", "shop", "load_catalog", "--run-once")
    refused = run(tmp_path, "manage.py", "import_prices", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "RequirementNotMet: Cannot run 'import_prices': it requires 'load_catalog', "
        "which has not run successfully yet."
    )
    assert run(tmp_path, "manage.py", "load_catalog").stdout == "Nothing done yet.\n"
    ran = run(tmp_path, "manage.py", "import_prices")
    assert ran.stdout == "Nothing done yet.\n"
    skipped = run(tmp_path, "manage.py", "import_prices")
    assert skipped.stdout.startswith("Skipped 'import_prices': this run_once command already ran")

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT command_name, app_label, status, success, run_once, output "
            "FROM managed_commands_commandexecution ORDER BY id"
        ).fetchall()
    assert rows == [
        ("load_catalog", "shop", "succeeded", 1, 1, "Nothing done yet.\n"),
        ("import_prices", "shop", "succeeded", 1, 1, "Nothing done yet.\n"),
    ]
