"""Part 6: ``run_pending_commands`` over a chain of pending no-op commands.

The chain (``generated.py``) is ``--chain`` run_once commands, each requiring
the previous one; the baseline is the same number of plain ``BaseCommand``\\ s
called in order by ``call_command()`` in one process (``bench_plain_all``).
The difference is what tracking costs the deploy step. The history is emptied
(untimed) before every managed run, so that the whole chain is pending again.
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


# -- the child ------------------------------------------------------------------
def _measure(runs: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from managed_commands.models import CommandExecution

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    history = CommandExecution.objects.all()

    def timed(name: str) -> float:
        if name == "run_pending_commands":
            history.delete()
        started = time.perf_counter()
        call_command(name, stdout=sink, stderr=sink)
        return time.perf_counter() - started

    samples: dict[str, list[float]] = {"bench_plain_all": [], "run_pending_commands": []}
    for name in samples:
        timed(name)  # imports the command modules
    for _ in range(runs):
        for name, times in samples.items():
            times.append(timed(name))
    history.delete()
    with CaptureQueriesContext(connection) as captured:
        call_command("run_pending_commands", stdout=sink, stderr=sink)
    return {
        "seconds": {name: median(times) for name, times in samples.items()},
        "queries": len(captured.captured_queries),
        "succeeded": history.filter(success=True).count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    Path(options.out).write_text(json.dumps(_measure(options.runs)))


# -- the parent -----------------------------------------------------------------
def measure(bench, runs: int) -> dict:
    return run_module(bench, __name__, "--runs", str(runs))


def run(projects: dict, options) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="mc-bench-apps-") as tmp:
        directory = generated.install(Path(tmp), options.commands, options.chain)
        return [
            table(generated.using(bench, directory, generated.CHAIN_APP), options)
            for bench in projects.values()
        ]


def table(bench, options) -> Table:
    chain, runs = options.chain, options.deploy_runs
    bench.sql(f"DELETE FROM {TABLE}")
    result = measure(bench, runs)
    assert result["succeeded"] == chain, result
    processes: dict[str, list[float]] = {"bench_plain_all": [], "run_pending_commands": []}
    for _ in range(runs):
        for name, timings in processes.items():
            bench.sql(f"DELETE FROM {TABLE}")
            timings.append(run_process(bench, name).seconds)
    rows = []
    for where, found in (
        ("in process (`call_command()`)", result["seconds"]),
        ("whole `manage.py` process", {k: median(v) for k, v in processes.items()}),
    ):
        plain, managed = found["bench_plain_all"], found["run_pending_commands"]
        tracking = managed - plain
        rows.append(
            [
                where,
                f"{plain * 1000:,.0f}",
                f"{managed * 1000:,.0f}",
                f"{tracking * 1000:+,.0f}",
                f"{tracking / managed:.0%}",
                f"{tracking / chain * 1000:,.2f}",
            ]
        )
    notes = [
        f"A chain of {chain} pending run_once no-op commands, each requiring the previous one; "
        f"baseline: {chain} plain `BaseCommand`s called in order by `call_command()` in one "
        f"process. Median of {runs} runs each, alternating; the history is emptied (untimed) "
        "before each `run_pending_commands`. Processes include Django's start and the system "
        "checks.",
        "Tracking = managed - plain: planning (the status of every command, the graph) and, "
        "per command, its claim, its checks for an earlier success, the finish and the "
        f"output capture. Queries of one in-process `run_pending_commands`: "
        f"{result['queries']:,} ({result['queries'] / chain:.1f} per command).",
    ]
    return Table(
        f"Deploy step, {bench.backend}",
        [
            "measured",
            f"plain, {chain} commands ms",
            "`run_pending_commands` ms",
            "tracking ms",
            "tracking share",
            "tracking ms per command",
        ],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
