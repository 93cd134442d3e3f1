"""Part 3: a batch loop over many rows, ``iterate_batches()`` vs a hand-written loop.

The parent seeds ``--batch-rows`` rows once per backend (one ``INSERT ...
SELECT``, not timed) and starts one child per backend (``python -m
tests.benchmarks.batches``). The child runs both commands by ``call_command()``
in the same process, alternately (the order flips every round), each adding 1
to every row's counter: one ``filter(pk__in=...).update(counter=F("counter") +
1)`` per batch of 1,000 rows paged by primary key.

- plain: ``bench_batches_plain``, a ``BaseCommand`` with the keyset loop
  written by hand (``pk > last ORDER BY pk LIMIT n`` in ``transaction.atomic()``);
- managed: ``bench_batches_managed``, a repeatable ``ManagedBaseCommand`` whose
  loop is ``self.iterate_batches()`` (each batch also saves the run's cursor
  and progress on its history row, in the batch's transaction).

Before each run, untimed: the history is emptied (so it stays one row), on
PostgreSQL the table is vacuumed and a checkpoint is taken (each run leaves a
dead version of every row), and the peak RSS is reset (``/proc/self/clear_refs``)
so that the peak of each run is its own.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

from tests.benchmarks.harness import Table, insert_series, median, run_module

TABLE = "benchapp_benchrow"
VARIANTS = (
    ("plain", "plain `BaseCommand`, hand-written keyset loop", "bench_batches_plain"),
    ("managed", "`ManagedBaseCommand`, `self.iterate_batches()`", "bench_batches_managed"),
)
BATCH_SIZE = 1000
TIME_TARGET = 1.05
# A batch of 1,000 model instances is about 1 MiB; a queryset cache of the
# whole table would be hundreds.
MEMORY_TARGET_MIB = 16


def seed(bench, rows: int) -> float:
    """Insert ``rows`` rows with a zero counter and ANALYZE; return seconds."""
    started = time.perf_counter()
    bench.sql(f"DELETE FROM {TABLE}")
    insert_series(bench, TABLE, "counter", "0", 1, rows)
    return time.perf_counter() - started


# -- the child ------------------------------------------------------------------
def _status_kib(key: str) -> int | None:
    try:
        found = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def _reset_peak() -> bool:
    """Reset VmHWM (the peak RSS) to the current RSS; False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _measure(runs: int, batch_size: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max, Min

    from managed_commands.models import CommandExecution
    from tests.benchmarks.benchapp.models import BenchRow

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    rows = BenchRow.objects.count()

    def prepare() -> None:
        CommandExecution.objects.all().delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {TABLE}")
                cursor.execute("CHECKPOINT")
        gc.collect()

    results: dict[str, dict[str, list]] = {
        key: {"seconds": [], "peak_mib": [], "kept_mib": [], "statements": []}
        for key, _, _ in VARIANTS
    }
    done = 0
    for round_ in range(runs):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for key, _, command in order:
            prepare()
            peak_known = _reset_peak()
            before = _status_kib("VmRSS")
            kinds: Counter[str] = Counter()

            def count(execute, sql, params, many, context, kinds=kinds):
                kinds[sql.lstrip().split(None, 1)[0].upper()] += 1
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):
                started = time.perf_counter()
                call_command(command, "--batch-size", str(batch_size), stdout=sink, stderr=sink)
                elapsed = time.perf_counter() - started
            done += 1
            after, peak = _status_kib("VmRSS"), _status_kib("VmHWM")
            found = results[key]
            found["seconds"].append(elapsed)
            if peak_known and before is not None and peak is not None:
                found["peak_mib"].append((peak - before) / 1024)
                found["kept_mib"].append((after - before) / 1024)
            found["statements"].append(dict(kinds))
            # Every row was updated once by this run, and only once.
            counters = BenchRow.objects.aggregate(low=Min("counter"), high=Max("counter"))
            assert counters["low"] == counters["high"] == done, (key, counters, done)
    history = list(CommandExecution.objects.values("status", "tick_count"))
    version = ".".join(map(str, connection.get_database_version()))
    return {
        "vendor": connection.vendor,
        "version": version,
        "rows": rows,
        "variants": results,
        "history": history,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    result = _measure(options.runs, options.batch_size)
    Path(options.out).write_text(json.dumps(result))


# -- the parent -----------------------------------------------------------------
def run(projects: dict, options) -> list[Table]:
    tables = []
    for bench in projects.values():
        seeded = seed(bench, options.batch_rows)
        result = run_module(bench, __name__, "--runs", str(options.batch_runs))
        tables.append(table(bench.backend, options, seeded, result))
    return tables


def table(backend: str, options, seeded: float, result: dict) -> Table:
    variants = result["variants"]
    plain = median(variants["plain"]["seconds"])
    # Each round ran both, one after the other: their ratio cancels a load both shared.
    pairs = zip(variants["plain"]["seconds"], variants["managed"]["seconds"], strict=True)
    ratios = [m / p for p, m in pairs]
    times = {"plain": 1.0, "managed": median(ratios)}
    batches = -(-result["rows"] // BATCH_SIZE) + 1  # the last, empty page ends the loop
    rows = []
    for key, label, _ in VARIANTS:
        found = variants[key]
        seconds = median(found["seconds"])
        statements: Counter[str] = Counter()
        for kinds in found["statements"]:
            statements.update(kinds)
        per_run = ", ".join(
            f"{n / len(found['statements']):,.0f} {kind}" for kind, n in sorted(statements.items())
        )
        rows.append(
            [
                label,
                f"{seconds:,.2f}",
                f"{(seconds - plain) * 1000:+,.0f}",
                f"{times[key]:.3f} x",
                f"{(seconds - plain) / batches * 1e6:+,.0f}",
                f"{result['rows'] / seconds:,.0f}",
                _mib(found["peak_mib"], median),
                _mib(found["peak_mib"], max),
                _mib(found["kept_mib"], max),
                per_run,
            ]
        )
    managed = median(variants["managed"]["seconds"])
    peaks = variants["managed"]["peak_mib"]
    time_met = times["managed"] <= TIME_TARGET
    memory_met = bool(peaks) and max(peaks) <= MEMORY_TARGET_MIB
    notes = [
        f"{result['rows']:,} rows (seeded once in {seeded:.1f} s by one INSERT ... SELECT, "
        f"not timed), batches of {BATCH_SIZE:,} ({batches:,} pages with the last, empty "
        f"one); {options.batch_runs} runs of each command by `call_command()` in one "
        "process, alternating (the order flips every round); seconds is the median run.",
        "Both do the same work per batch: one keyset SELECT (`pk > last ORDER BY pk "
        'LIMIT 1000`) and one `filter(pk__in=...).update(counter=F("counter") + 1)` in '
        "one transaction. The managed loop adds, per batch, the UPDATE of its run's "
        "history row (cursor and progress, in the same transaction), and, per run, "
        "the run's INSERT and finishing UPDATE and a COUNT(*) of the rows (the total "
        "of its progress).",
        "Before each run, untimed: the history table is emptied (the command is "
        "repeatable: a run_once one would skip every run after the first), on PostgreSQL "
        "the rows are vacuumed and a checkpoint taken, and the peak RSS is reset. Peak "
        "RSS growth: the process's peak RSS during the run minus its RSS before it; "
        "kept: RSS after minus before.",
        "Statements per run: those sent through Django's cursor (BEGIN and COMMIT are "
        "not statements there; SQLite's BEGIN is); the managed SELECTs include its COUNT(*).",
        "Each run, in order (s): "
        + "; ".join(
            f"{key} " + ", ".join(f"{seconds:.2f}" for seconds in variants[key]["seconds"])
            for key, _, _ in VARIANTS
        )
        + ".",
        "x plain: the median of the rounds' ratios (managed ÷ plain, each round running "
        f"both): from {min(ratios):.2f} to {max(ratios):.2f}; the medians' ratio "
        f"{managed / plain:.2f} x.",
        f"Target: {times['managed']:.3f} x plain time (<= {TIME_TARGET}) and a peak RSS "
        f"growth of at most {MEMORY_TARGET_MIB} MiB "
        f"({_mib(peaks, max)} MiB): {'met' if time_met and memory_met else 'MISSED'}.",
    ]
    return Table(
        f"Batch loop, {backend} ({result['vendor']} {result['version']})",
        [
            "loop",
            "seconds (median)",
            "ms added",
            "x plain (median ratio)",
            "µs added per batch",
            "rows/s",
            "peak RSS growth MiB (median)",
            "(max)",
            "RSS kept MiB (max)",
            "statements per run",
        ],
        rows,
        notes,
    )


def _mib(values: list[float], pick) -> str:
    return f"{pick(values):+,.1f}" if values else "n/a"


if __name__ == "__main__":
    main()
