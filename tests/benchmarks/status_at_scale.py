"""Part 4: ``show_managed_commands`` with many commands and a long history.

A generated app holds the managed commands (``generated.py``); the history is
seeded in raw SQL, in steps (0, then each size of ``--history-rows``), spread
over those commands. At each step a child process counts the queries and times
the command in process (``python -m tests.benchmarks.status_at_scale``), and
whole ``manage.py show_managed_commands`` processes are timed next to a plain
no-op command of the same project.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tests.benchmarks import generated
from tests.benchmarks.harness import Table, median, run_module, run_process
from tests.processes import TABLE

TARGET_MS = 300
COUNTED_CALLS = 5

# One row per number g: 1 run in 20 failed, the rest succeeded, 20 s apart. (The
# PostgreSQL driver takes %s parameters, so its modulo is written %%.)
_COLUMNS = (
    "command_name, app_label, scope, status, success, run_once, forced, parameters, output, "
    "stderr, error_message, traceback, executed_at, finished_at, duration, source_hash, "
    "hostname, pid, process_token, host_id"
)
_VALUES = {
    "postgresql": (
        "'bench_status_' || lpad((g %% {commands})::text, 3, '0'), '{app}', '', "
        "CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'succeeded' END, g %% 20 <> 0, true, false, "
        "'{{}}', 'Done.', '', CASE WHEN g %% 20 = 0 THEN 'Boom.' ELSE '' END, '', "
        "timestamptz '2024-01-01' + g * interval '20 seconds', "
        "timestamptz '2024-01-01' + g * interval '20 seconds' + interval '1 second', "
        "1.0, repeat('0', 64), 'bench-host', 4242, '', '' "
        "FROM generate_series(%s::bigint, %s::bigint) AS g"
    ),
    "sqlite": (
        "'bench_status_' || printf('%03d', g % {commands}), '{app}', '', "
        "CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END, g % 20 <> 0, 1, 0, "
        "'{{}}', 'Done.', '', CASE WHEN g % 20 = 0 THEN 'Boom.' ELSE '' END, '', "
        "strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || (g * 20) || ' seconds'), "
        "strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || (g * 20 + 1) || ' seconds'), "
        "1.0, printf('%064d', 0), 'bench-host', 4242, '', '' FROM series"
    ),
}


def seed(bench, first: int, last: int, commands: int) -> float:
    """Insert history rows numbered ``first``..``last``, then ANALYZE; return seconds."""
    started = time.perf_counter()
    if last >= first:
        values = _VALUES[bench.backend].format(commands=commands, app=generated.STATUS_APP)
        query = f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {values}"
        if bench.backend == "sqlite":
            query = (
                "WITH RECURSIVE series(g) AS (SELECT ? UNION ALL SELECT g + 1 FROM series "
                f"WHERE g < ?) {query}"
            )
        bench.sql(query, (first, last))
    bench.sql("ANALYZE")
    return time.perf_counter() - started


# -- the child ------------------------------------------------------------------
def _measure() -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def call() -> float:
        started = time.perf_counter()
        call_command("show_managed_commands", stdout=sink)
        return time.perf_counter() - started

    first = call()  # imports the command modules (discovery) and connects
    warm = [call() for _ in range(COUNTED_CALLS)]
    with CaptureQueriesContext(connection) as captured:
        call()
    from managed_commands.status import command_statuses

    return {
        "first": first,
        "warm": median(warm),
        "queries": len(captured.captured_queries),
        "commands": len(command_statuses()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    Path(parser.parse_args().out).write_text(json.dumps(_measure()))


# -- the parent -----------------------------------------------------------------
def measure(bench) -> dict:
    return run_module(bench, __name__)


def run(projects: dict, options) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="mc-bench-apps-") as tmp:
        directory = generated.install(Path(tmp), options.commands, options.chain)
        return [
            table(generated.using(bench, directory, generated.STATUS_APP), options)
            for bench in projects.values()
        ]


def table(bench, options) -> Table:
    sizes = sorted({0, *options.history_rows})
    rows, notes, seeded, added = [], [], 0, []
    for size in sizes:
        seconds = seed(bench, seeded + 1, size, options.commands)
        notes.append(f"Seeding up to {size:,} rows took {seconds:.1f} s (INSERT ... SELECT).")
        seeded = size
        result = measure(bench)
        assert result["commands"] == options.commands, result
        processes: dict[str, list[float]] = {"bench_noop": [], "show_managed_commands": []}
        for _ in range(options.status_runs):
            for name, timings in processes.items():
                timings.append(run_process(bench, name).seconds)
        plain, shown = (median(timings) for timings in processes.values())
        added.append(shown - plain)
        rows.append(
            [
                f"{size:,}",
                f"{result['queries']}",
                f"{result['first'] * 1000:,.0f}",
                f"{result['warm'] * 1000:,.0f}",
                f"{plain * 1000:,.0f}",
                f"{shown * 1000:,.0f}",
                f"{(shown - plain) * 1000:+,.0f}",
            ]
        )
    # Without any history no newest run failed, so no newest success is sought apart:
    # the count that must not grow is the one of the sizes with history.
    queries = {row[1] for row in rows if row[0] != "0"} or {rows[0][1]}
    met = max(added) * 1000 < TARGET_MS and len(queries) == 1
    notes[:0] = [
        f"{options.commands} generated managed commands (3 in 4 run_once, some requiring "
        "another command or a migration); the history rows are spread evenly over them, "
        "1 in 20 failed, each with a source hash that differs from the file (so every "
        "command's file is hashed for the 'changed' mark).",
        "Queries and in-process times: a child process calls `call_command("
        "'show_managed_commands')`; the first call includes importing the command "
        f"modules, later calls are the median of {COUNTED_CALLS}.",
        f"Processes: `manage.py show_managed_commands` and a plain no-op command "
        f"(`bench_noop`) of the same project, {options.status_runs} runs each, alternating, "
        "system checks included; median wall time.",
        "The admin overview, which reads the same statuses, is not timed here.",
        f"Target: under {TARGET_MS} ms added and a query count that does not grow with the "
        f"history: {max(added) * 1000:.0f} ms at most, queries {', '.join(sorted(queries))} "
        "with history (one statement fewer with none, where no newest run failed and no "
        f"newest success is sought apart): {'met' if met else 'MISSED'}.",
    ]
    return Table(
        f"Status at scale, {bench.backend}",
        [
            "history rows",
            "queries",
            "first call ms",
            "later calls ms",
            "plain no-op process ms",
            "`show_managed_commands` process ms",
            "ms added",
        ],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
