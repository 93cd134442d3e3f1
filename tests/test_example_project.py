"""The example project's tests, written with the testing kit, pass as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


@pytest.mark.processes
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
