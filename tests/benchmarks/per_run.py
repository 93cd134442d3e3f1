"""Part 1: the cost of one tracked run in process, next to plain Django and the peers.

The parent starts one child per backend (``python -m tests.benchmarks.per_run``)
with the benchmark settings on a fresh database. The child times
``call_command()`` of a no-op command for every variant, interleaved in blocks
so that drift (checkpoints, disk cache) hits every variant alike, then counts
the SQL of a few more runs of each, and writes JSON for the parent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from tests.benchmarks.harness import Table, median, ratio, run_module

WRITES = ("INSERT", "UPDATE", "DELETE")
COUNTED_RUNS = 20


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    command: str = ""
    needs: str = ""  # module of a peer that must be installed
    reset: str = ""  # name whose history is deleted (untimed) before each run


VARIANTS = (
    Variant("plain", "plain `BaseCommand`", "noop_plain"),
    Variant("floor", "floor: raw INSERT + UPDATE of one history row, 2 autocommits"),
    Variant("history_writes", "its two history writes alone (`ExecutionRecorder`)"),
    Variant(
        "between_writes",
        "plain `BaseCommand` between the floor's two writes (no tracking code)",
        "noop_plain",
    ),
    Variant("managed", "`ManagedBaseCommand`", "noop_managed"),
    Variant("once_pending", "`ManagedBaseCommand`, run_once, pending", "noop_once", reset="ours"),
    Variant("once_done", "`ManagedBaseCommand`, run_once, already done (skips)", "noop_once"),
    Variant(
        "dmc",
        "django-managed-commands `ManagedCommand`",
        "peer_dmc_noop",
        "django_managed_commands",
    ),
    Variant(
        "dmc_once_pending",
        "django-managed-commands, run_once, pending",
        "peer_dmc_once",
        "django_managed_commands",
        reset="dmc",
    ),
    Variant(
        "dmc_once_done",
        "django-managed-commands, run_once, already done (skips)",
        "peer_dmc_once",
        "django_managed_commands",
    ),
    Variant("log", "django-command-log `LoggedCommand`", "peer_log_noop", "command_log"),
)
# Managed variants checked against the targets: time added <= 1.25 x floor, <= 5 queries.
FLOOR_TARGET = 1.25
QUERY_TARGET = 5


# -- the child ------------------------------------------------------------------
def _raw_history_writes(connection, start_fields: dict):
    """The floor: the same two writes a run makes, as raw SQL prepared in advance.

    A full running row is inserted into the history table (its indexes and the
    unique lock key included) and then finished, each write its own autocommit.
    """
    from django.utils import timezone

    from managed_commands.models import CommandExecution

    meta = CommandExecution._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    row = CommandExecution(**start_fields)
    insert_params = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
    lock_index = fields.index(meta.get_field("lock_key"))
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    insert = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"
    returning = connection.features.can_return_columns_from_insert
    if returning:
        insert += f" RETURNING {quote(meta.pk.column)}"
    finished = {
        "status": "succeeded",
        "success": True,
        "finished_at": timezone.now(),
        "duration": 0.0,
        "output": "",
        "stderr": "",
        "error_message": "",
        "traceback": "",
        "lock_key": None,
    }
    update_fields = [meta.get_field(name) for name in finished]
    update_params = [f.get_db_prep_save(finished[f.name], connection) for f in update_fields]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in update_fields)
    # Fenced, as every end must be: it changes the row only while it holds its claim.
    update = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "
        f"WHERE {quote(meta.pk.column)} = %s AND {quote('lock_key')} = %s"
    )
    serial = iter(range(1, 10**9))

    def start(cursor) -> tuple[int, str]:
        params = list(insert_params)
        params[lock_index] = key = f"floor-{next(serial)}"
        cursor.execute(insert, params)
        return (cursor.fetchone()[0] if returning else cursor.lastrowid), key

    def end(cursor, pk: int, key: str) -> None:
        cursor.execute(update, [*update_params, pk, key])

    def floor_writes() -> None:
        with connection.cursor() as cursor:
            end(cursor, *start(cursor))

    def around(call) -> None:
        """The floor's two writes with ``call`` between them, as a tracked run has handle()."""
        with connection.cursor() as cursor:
            pk, key = start(cursor)
        call()
        with connection.cursor() as cursor:
            end(cursor, pk, key)

    return floor_writes, around


def _measure(runs: int, block: int, warmup: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from managed_commands.recorder import ExecutionRecorder
    from managed_commands.runs import lease
    from managed_commands.runs.claim import lock_key

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    recorder = ExecutionRecorder(connection.alias)
    start_fields = {
        "command_name": "bench_history_writes",
        "app_label": "benchapp",
        "parameters": {"args": [], "options": {}},
        "source_hash": "0" * 64,
        "hostname": lease.hostname(),
        "pid": os.getpid(),
        "process_token": lease.own_process_token(),
        "lock_key": lock_key("bench_history_writes", ""),
    }

    floor_writes, around = _raw_history_writes(connection, start_fields)

    def history_writes() -> None:
        """The claim and the finish of a run, without the command around them."""
        execution = recorder.claim(**start_fields)
        recorder.finish(
            execution,
            start_fields["lock_key"],
            status="succeeded",
            success=True,
            finished_at=timezone.now(),
            duration=0.0,
            output="",
            stderr="",
            error_message="",
            traceback="",
        )

    def resetter(variant: Variant):
        if variant.reset == "ours":
            return lambda: recorder.history(variant.command).delete()
        if variant.reset == "dmc":
            from django_managed_commands.models import CommandExecution

            name = f"peers.{variant.command}"
            return lambda: CommandExecution.objects.filter(command_name=name).delete()
        return None

    def runner(variant: Variant):
        if variant.key == "history_writes":
            return history_writes
        if not variant.command:
            return floor_writes
        if variant.key == "between_writes":
            return lambda: around(lambda: call_command(variant.command, stdout=sink, stderr=sink))
        return lambda: call_command(variant.command, stdout=sink, stderr=sink)

    chosen = [v for v in VARIANTS if not v.needs or find_spec(v.needs)]
    calls = {v.key: (runner(v), resetter(v)) for v in chosen}

    def timed(key: str, count: int) -> list[float]:
        run, reset = calls[key]
        times = []
        for _ in range(count):
            if reset:
                reset()
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        return times

    for variant in chosen:
        timed(variant.key, warmup)
    samples: dict[str, list[float]] = {v.key: [] for v in chosen}
    for done in range(0, runs, block):
        for variant in chosen:
            samples[variant.key] += timed(variant.key, min(block, runs - done))

    results: dict[str, object] = {}
    for variant in chosen:
        run, reset = calls[variant.key]
        statements: list[str] = []
        for _ in range(COUNTED_RUNS):
            if reset:
                reset()
            with CaptureQueriesContext(connection) as captured:
                run()
            statements += [query["sql"] for query in captured.captured_queries]
        kinds: dict[str, int] = {}
        for sql in statements:
            kind = sql.lstrip().split(None, 1)[0].upper()
            kinds[kind] = kinds.get(kind, 0) + 1
        results[variant.key] = {
            "seconds": median(samples[variant.key]),
            "mean": statistics.fmean(samples[variant.key]),
            "queries": len(statements) / COUNTED_RUNS,
            "writes": sum(n for kind, n in kinds.items() if kind in WRITES) / COUNTED_RUNS,
            "kinds": {kind: n / COUNTED_RUNS for kind, n in sorted(kinds.items())},
        }
    version = ".".join(map(str, connection.get_database_version()))
    return {"vendor": connection.vendor, "version": version, "variants": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--block", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    result = _measure(options.runs, options.block, options.warmup)
    Path(options.out).write_text(json.dumps(result))


# -- the parent -----------------------------------------------------------------
def measure(bench, runs: int) -> dict[str, object]:
    """Run the child on ``bench``'s database; return its JSON."""
    block = max(1, min(10, runs // 10))
    return run_module(bench, __name__, "--runs", str(runs), "--block", str(block))


def run(projects: dict, options) -> list[Table]:
    return [
        table(backend, options.runs, measure(bench, options.runs))
        for backend, bench in projects.items()
    ]


def table(backend: str, runs: int, result: dict) -> Table:
    variants = result["variants"]
    plain = variants["plain"]["seconds"]
    floor = variants["floor"]["seconds"]
    rows = []
    for variant in VARIANTS:
        found = variants.get(variant.key)
        if found is None:
            missing = f"not installed (`pip install {_package(variant)}`)"
            rows.append([variant.label, missing, *[""] * 7])
            continue
        seconds, queries, writes = found["seconds"], found["queries"], found["writes"]
        added = seconds if not variant.command else seconds - plain
        rows.append(
            [
                variant.label,
                f"{seconds * 1e6:,.0f}",
                f"{added * 1e6:+,.0f}",
                ratio(seconds, plain) if variant.command else "",
                f"{added / floor:.2f} x" if variant.key != "plain" else "",
                f"{queries:g}",
                f"{writes:g}",
                f"{added / writes * 1e6:,.0f}" if writes else "",
                f"{found['mean'] * 1e6:,.0f}",
            ]
        )
    title = f"Per-run cost in process, {backend} ({result['vendor']} {result['version']})"
    notes = [
        f"{runs:,} `call_command()` runs of each variant, interleaved in blocks of at most "
        "10 so that disk stalls hit all alike; µs/run is the median run (the mean, "
        "which the disk's occasional long fsyncs dominate, is in the last column).",
        "Queries: every statement Django logs on the connection (`CaptureQueriesContext`, "
        f"{COUNTED_RUNS} runs), including the BEGIN, COMMIT and SAVEPOINT "
        "Django logs for the transactions it opens; a statement in autocommit commits by "
        "itself and logs no COMMIT. Writes: INSERT, "
        "UPDATE and DELETE statements, each its own durable commit here.",
        "Per run: "
        + "; ".join(
            _kinds(v.label, variants[v.key]) for v in VARIANTS if v.command and v.key in variants
        ),
    ]
    notes += _verdicts(variants, plain, floor)
    return Table(
        title,
        [
            "variant",
            "µs/run",
            "µs added",
            "x plain",
            "added ÷ floor",
            "queries/run",
            "writes/run",
            "µs added per write",
            "mean µs/run",
        ],
        rows,
        notes,
    )


def _package(variant: Variant) -> str:
    from tests.benchmarks.settings import PEER_MODULES

    return PEER_MODULES[variant.needs]


def _kinds(label: str, found: dict) -> str:
    kinds = ", ".join(f"{n:g} {kind}" for kind, n in found["kinds"].items()) or "none"
    return f"{label}: {kinds}"


def _verdicts(variants: dict, plain: float, floor: float) -> list[str]:
    verdicts = []
    for key in ("managed", "once_pending"):
        found = variants[key]
        added = found["seconds"] - plain
        times = added / floor
        met = times <= FLOOR_TARGET and found["queries"] <= QUERY_TARGET
        verdicts.append(
            f"Target for {key}: time added {times:.2f} x floor (<= {FLOOR_TARGET}) and "
            f"{found['queries']:g} queries (<= {QUERY_TARGET}): {'met' if met else 'MISSED'}."
        )
    between = variants["between_writes"]["seconds"]
    own = variants["managed"]["seconds"] - between
    verdicts.append(
        f"With no tracking code at all, a plain command between the floor's two writes "
        f"already adds {(between - plain) / floor:.2f} x floor (Python resumed after a "
        f"durable commit runs with cold caches); what the tracking code itself adds on top: "
        f"{own * 1e6:,.0f} µs, {own / floor:.2f} x floor."
    )
    per_write = (variants["managed"]["seconds"] - plain) / variants["managed"]["writes"]
    for key in ("dmc", "log"):
        if key in variants and variants[key]["writes"]:
            theirs = (variants[key]["seconds"] - plain) / variants[key]["writes"]
            verdicts.append(
                f"Per durable write, managed {per_write * 1e6:,.0f} µs vs {key} "
                f"{theirs * 1e6:,.0f} µs: {'cheaper' if per_write < theirs else 'NOT cheaper'}."
            )
    return verdicts


if __name__ == "__main__":
    main()
