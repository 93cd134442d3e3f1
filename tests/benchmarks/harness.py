"""What every benchmark part shares: a migrated database, timed processes, tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import MANAGE, ProcessProject

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.benchmarks.settings"


def project(backend: str, workdir: Path) -> ProcessProject:
    """A freshly migrated database on ``backend`` (peers' tables included when installed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    bench = ProcessProject(backend, workdir)
    bench.env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    bench.env["MC_BENCH_PEERS"] = "1"
    # Output goes through Python's usual buffering, as in a real deployment.
    bench.env.pop("PYTHONUNBUFFERED", None)
    return bench.create()


@dataclass
class ProcessRun:
    seconds: float
    max_rss_mib: float


def run_process(
    bench: ProcessProject, *argv: str, peers: bool = False, exit_code: int = 0
) -> ProcessRun:
    """Run ``manage.py *argv`` to completion, stdout to /dev/null; wall time and peak RSS.
    Any exit code but ``exit_code`` raises.

    ``os.wait4`` returns the resource usage of that one child, so ``ru_maxrss``
    is its own peak resident set (VmHWM), not a maximum over earlier children.
    """
    env = {**bench.env, "MC_BENCH_PEERS": "1" if peers else "0"}
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), *argv],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != exit_code:
            errors.seek(0)
            raise RuntimeError(
                f"manage.py {' '.join(argv)} exited {process.returncode}: "
                f"{errors.read().decode(errors='replace')[-2000:]}"
            )
    return ProcessRun(elapsed, usage.ru_maxrss / 1024)


def run_module(bench: ProcessProject, module: str, *argv: str) -> dict:
    """Run ``python -m module *argv --out FILE`` with the benchmark settings on
    ``bench``'s database; return the JSON the child wrote to FILE."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        _run_child(bench, module, *argv, "--out", str(out))
        return json.loads(out.read_text())


def _run_child(bench: ProcessProject, module: str, *argv: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *argv],
        env={**bench.env, "MC_BENCH_PEERS": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"{module} exited {result.returncode}: {result.stderr[-4000:]}")


def insert_series(
    bench: ProcessProject, table: str, columns: str, select: str, first: int, last: int
) -> None:
    """Insert into ``table`` one row of ``select`` (an SQL expression list of ``g``) for
    each ``g`` from ``first`` to ``last``, in one statement; then ANALYZE ``table``.

    Each backend numbers rows its own way: SQLite a recursive CTE, PostgreSQL
    ``generate_series()``, MariaDB its sequence engine (``seq_1_to_N``).
    """
    if last < first:
        return
    insert = f"INSERT INTO {table} ({columns})"
    if bench.backend == "sqlite":
        query = (
            f"WITH RECURSIVE series(g) AS (SELECT {first:d} UNION ALL SELECT g + 1 FROM series "
            f"WHERE g < {last:d}) {insert} SELECT {select} FROM series"
        )
    elif bench.backend == "postgresql":
        query = f"{insert} SELECT {select} FROM generate_series({first:d}, {last:d}) AS g"
    else:
        query = f"{insert} SELECT {select} FROM (SELECT seq AS g FROM seq_{first:d}_to_{last:d}) s"
    bench.sql(query)
    # The planner's statistics, as the database would refresh them in time.
    bench.sql(f"ANALYZE TABLE {table}" if bench.backend == "mariadb" else f"ANALYZE {table}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f} x" if base else "n/a"


@dataclass
class Table:
    """One Markdown table of results, with notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"
