"""The benchmark runner works end to end (tiny sizes; the real figures come from
``python -m tests.benchmarks``). Nothing here is timed: only the shape of the output."""

import re
import subprocess
import sys

import pytest

from tests import backends
from tests.benchmarks.harness import ROOT
from tests.benchmarks.status_at_scale import READ_TARGET_BACKENDS

pytestmark = pytest.mark.processes

TINY = {
    "--pairs": 1,
    "--statement-runs": 1,
    "--megabytes": 1,
    "--capture-runs": 1,
    # With 10 commands, the newest run of one of them failed at both sizes.
    "--history-rows": "60,100",
    "--commands": 10,
    "--status-runs": 1,
    "--chain": 3,
    "--deploy-runs": 1,
    "--batch-rows": 2000,
    "--batch-runs": 1,
    "--tenants": 3,
    "--tenant-history": 2,
    "--tenant-runs": 1,
}


def test_runner_prints_every_table_with_plain_django_alongside():
    backend = backends.requested() or "sqlite"
    argv = [str(part) for option in TINY.items() for part in option]
    result = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks", "--backends", backend, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("## Benchmarks\n\nMachine: ")
    titles = (
        "Whole process",
        "Statements per run",
        "Batch loop",
        "Status at scale",
        "Cadence at scale",
        "Console at scale",
    )
    for title in (*titles, "Output capture", "Deploy step"):
        assert f"### {title}, {backend}" in out
    # django-tenants needs PostgreSQL: the part says nothing elsewhere.
    assert ("### Across tenants, postgresql (3 tenants)" in out) == (backend == "postgresql")
    # Whole processes: the tracked no-op next to the plain one, as a median ratio.
    assert "| plain `BaseCommand` (`noop_plain`) | " in out
    assert "| `ManagedBaseCommand` (`noop_managed`) | " in out
    assert "in 1 pairs of fresh processes" in out
    assert re.search(r"^- Target: at most 1\.05 x plain: \d+\.\d{3} x: (met|MISSED)\.$", out, re.M)
    # Statements: plain Django sends none; each tracked variant has its bound.
    assert "| plain `BaseCommand` | 0 | none |  |" in out
    assert "| `ManagedBaseCommand`, repeatable | 2 | 1 INSERT, 1 UPDATE | at most 2 |" in out
    assert "| `ManagedBaseCommand`, run_once, pending | 2 | " in out
    assert "| `ManagedBaseCommand`, run_once, already done (skips) | " in out
    # Both loops updated every row once (the child checks the counters) with flat memory.
    assert "| plain `BaseCommand`, hand-written keyset loop | " in out
    assert "| `ManagedBaseCommand`, `self.iterate_batches()` | " in out
    assert "2,000 rows (seeded once in " in out
    assert "x plain time (<= 1.05) and a peak RSS growth of at most 16 MiB" in out
    # Status: the read and both views at both sizes (and the smallest at 10 commands)
    # next to Django's admin index and a plain process, with the same queries.
    status, cadence, console = (
        out.split(f"### {title}, {backend}")[1].split("\n### ")[0] for title in titles[3:]
    )
    assert "| plain Django: admin index ms | " in status
    assert "| plain Django: `manage.py` no-op process ms |" in status
    assert same_queries(status, 3), status
    assert "Target, 100 rows against 60 (and 10 commands): as fast (at most 1.1 x in " in status
    assert "status read (`command_statuses()`) " in status
    assert ", the same queries; `show_managed_commands` " in status
    assert ", the same queries; admin overview " in status
    # Cadence: the read, the health check, the JSON view and the gate, the same way.
    assert "| `manage.py show_managed_commands --check-cadence` process ms |" in cadence
    assert same_queries(cadence, 4), cadence
    assert "health check (django-health-check's view): the same queries; " in cadence
    # The 100 ms bound is set for SQLite and PostgreSQL only.
    bounded = r"Target, at 100 rows: at most 100 ms: .* ms: (met|MISSED)\.$"
    assert bool(re.search(bounded, cadence, re.M)) == (backend in READ_TARGET_BACKENDS)
    # Console: its three pages beside the admin's changelist, the same way; no process.
    assert "| plain Django: the admin's changelist queries | ms |" in console
    assert same_queries(console, 4), console
    assert bool(re.search(bounded, console, re.M)) == (backend in READ_TARGET_BACKENDS)
    assert "process ms" not in console
    # The other parts, unchanged.
    assert "| 1 MiB | `ManagedBaseCommand` | " in out
    assert "Target at 1 MiB: " in out
    assert "| in process (`call_command()`) | " in out
    assert "| whole `manage.py` process | " in out


def same_queries(table: str, calls: int) -> bool:
    """The queries of every call are the same at 60 and 100 rows and at 10 commands."""
    queries = r"(\d+) \| [\d,]+ \| " * calls
    found = [re.search(rf"^\| {rows} \| {queries}", table, re.M) for rows in ROWS]
    return all(found) and len({match.groups() for match in found}) == 1


ROWS = ("60", "100", "60, 10 commands")
