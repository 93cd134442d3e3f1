"""The example project, as the README shows it: its deploy flow and its kit-based tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


@pytest.fixture
def manage(tmp_path):
    env = {**os.environ, "EXAMPLE_DB": str(tmp_path / "db.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(*argv):
        return subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_from_an_empty_database_to_everything_done(manage):
    migrate = manage("migrate")
    assert (migrate.returncode, migrate.stderr) == (0, "")
    assert migrate.stdout.endswith(
        "Pending run_once commands: load_catalog, import_prices\n"
        "  Run them in order with: python manage.py run_pending_commands\n"
    )
    assert manage("show_managed_commands", "--check").returncode == 1

    plan = manage("run_pending_commands", "--plan")
    assert plan.stdout == (
        "Would run 2 pending commands, in this order:\n"
        "  1. load_catalog\n"
        "  2. import_prices  (requires load_catalog, catalog.0001_initial)\n"
    )
    entries = json.loads(manage("show_managed_commands", "--json").stdout)
    order = [line.split(". ")[1].split()[0] for line in plan.stdout.splitlines()[1:]]
    for entry in entries:
        for requirement in entry["requires"]:
            if "." not in requirement:
                assert order.index(requirement) < order.index(entry["name"])

    dry = manage("load_catalog", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout == (
        "Loaded 3 products.\n"
        "Dry run of 'load_catalog' rolled back: it would have written catalog_product (3 insert).\n"
    )
    assert manage("show_managed_commands", "--check").returncode == 1  # still pending

    run = manage("run_pending_commands")
    assert (run.returncode, run.stderr) == (0, "")
    assert "Loaded 3 products.\n" in run.stdout and "Priced 3 products.\n" in run.stdout

    assert manage("show_managed_commands", "--check").returncode == 0
    entries = json.loads(manage("show_managed_commands", "--json").stdout)
    assert {e["name"]: e["state"] for e in entries if e["run_once"]} == {
        "import_prices": "done",
        "load_catalog": "done",
    }
    again = manage("run_pending_commands")
    assert (again.returncode, again.stdout) == (0, "No pending run_once commands.\n")
    assert manage("migrate").stdout.endswith("No migrations to apply.\n")


def test_the_example_project_tests_pass():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MC_TEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    collected = sorted(set(re.findall(r"^catalog/tests/(test_\w+\.py)::", result.stdout, re.M)))
    assert collected == [
        "test_import_prices.py",
        "test_load_catalog.py",
        "test_report_stock.py",
        "test_sync_supplier.py",
    ]
    assert re.search(r"\b9 passed\b", result.stdout), result.stdout
