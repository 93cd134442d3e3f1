"""The benchmark runner works end to end (tiny sizes; the real figures come from
``python -m tests.benchmarks``)."""

import re
import subprocess
import sys

import pytest

from tests import backends
from tests.benchmarks.harness import ROOT

pytestmark = pytest.mark.processes


def test_runner_prints_every_table_with_plain_django_alongside():
    # The benchmarks run on SQLite and PostgreSQL; a MariaDB run checks them on SQLite.
    backend = backends.requested() if backends.requested() == "postgresql" else "sqlite"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks",
            "--backends",
            backend,
            "--runs",
            "4",
            "--process-runs",
            "1",
            "--megabytes",
            "1",
            "--capture-runs",
            "1",
            "--history-rows",
            "50",
            "--commands",
            "10",
            "--status-runs",
            "1",
            "--chain",
            "3",
            "--deploy-runs",
            "1",
            "--batch-rows",
            "2000",
            "--batch-runs",
            "1",
            "--tenants",
            "3",
            "--tenant-history",
            "2",
            "--tenant-runs",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("## Benchmarks\n\nMachine: ")
    titles = ("Per-run cost in process", "Whole process", "Output capture", "Status at scale")
    for title in (*titles, "Deploy step", "Batch loop"):
        assert f"### {title}, {backend}" in out
    assert "| plain `BaseCommand` | " in out
    # django-tenants needs PostgreSQL: the part says nothing on SQLite.
    assert ("### Across tenants, postgresql (3 tenants)" in out) == (backend == "postgresql")
    assert "| `ManagedBaseCommand` | " in out
    assert "| floor: raw INSERT + UPDATE of one history row, 2 autocommits | " in out
    assert "| plain `BaseCommand` between the floor's two writes (no tracking code) | " in out
    assert "what the tracking code itself adds on top: " in out
    assert "| plain `BaseCommand` (`noop_plain`) | " in out
    assert "| 1 MiB | `ManagedBaseCommand` | " in out
    assert "Target for managed: time added " in out
    assert "Target at 1 MiB: " in out
    # The same query count with and without history, and the whole chain ran.
    counts = [re.search(rf"^\| {rows} \| (\d+) \| ", out, re.M) for rows in (0, 50)]
    assert all(counts) and counts[0][1] == counts[1][1] == "2", counts
    assert "Target: under 300 ms added and a query count that does not grow with the " in out
    assert "| in process (`call_command()`) | " in out
    assert "| whole `manage.py` process | " in out
    # Both loops updated every row once (the child checks the counters) with flat memory.
    assert "| plain `BaseCommand`, hand-written keyset loop | " in out
    assert "| `ManagedBaseCommand`, `self.iterate_batches()` | " in out
    assert "2,000 rows (seeded once in " in out
    assert "x plain time (<= 1.05) and a peak RSS growth of at most 16 MiB" in out
