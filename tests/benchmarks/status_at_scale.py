"""Part 4: the status read, ``show_managed_commands`` and the admin overview at 100,000
and 1,000,000 history rows.

A generated app holds the managed commands (``generated.py``); each size of
``--history-rows`` has a database of its own, its history seeded in SQL and
spread over those commands. Each round measures every size in turn, so that the
load of a shared machine weighs on each alike: a child process (``python -m
tests.benchmarks.status_at_scale``) counts the queries and times, in process,
the status read (``command_statuses()``), ``show_managed_commands`` and the
admin overview next to Django's own admin index; then a whole ``manage.py
show_managed_commands`` process is timed next to a plain no-op command of the
same project.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from io import StringIO
from pathlib import Path

from tests.benchmarks import generated
from tests.benchmarks.harness import (
    Table,
    insert_series,
    median,
    project,
    run_module,
    run_process,
)
from tests.processes import TABLE

# "As fast": the largest history within this factor of the smallest (the noise of a
# shared 2-core machine is about as large), with the same number of queries.
SCALE_TARGET = 1.10
# The status read at the largest size, on SQLite and PostgreSQL.
READ_TARGET = 0.100
READ_TARGET_BACKENDS = ("sqlite", "postgresql")
# Calls timed per view in each round (once every view had a first one).
TIMED_CALLS = 3

# One row per number g, 20 s apart, of command g % commands: 1 run in 20 of each command
# failed (the newest run of 1 command in 20), the rest succeeded; 3 commands in 4 are
# run_once, as generated. (The PostgreSQL and MariaDB drivers take %s parameters, so
# their modulo is written %%.)
_FAILED = {
    "postgresql": "(g + g / {commands}) %% 20 = 0",
    "sqlite": "(g + g / {commands}) % 20 = 0",
    "mariadb": "(g + g DIV {commands}) %% 20 = 0",
}
_COLUMNS = (
    "command_name, app_label, scope, status, success, run_once, forced, parameters, output, "
    "stderr, error_message, traceback, executed_at, finished_at, duration, source_hash, "
    "hostname, pid, process_token, host_id, at_least_once, dry_run"
)
_VALUES = {
    "postgresql": (
        "'bench_status_' || lpad((g %% {commands})::text, 3, '0'), '{app}', '', "
        "CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END, NOT {failed}, "
        "g %% {commands} %% 4 <> 0, false, "
        "'{{}}', 'Done.', '', CASE WHEN {failed} THEN 'Boom.' ELSE '' END, '', "
        "timestamptz '2024-01-01' + g * interval '20 seconds', "
        "timestamptz '2024-01-01' + g * interval '20 seconds' + interval '1 second', "
        "1.0, repeat('0', 64), 'bench-host', 4242, '', '', false, false"
    ),
    "sqlite": (
        "'bench_status_' || printf('%03d', g % {commands}), '{app}', '', "
        "CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END, NOT {failed}, "
        "g % {commands} % 4 <> 0, 0, "
        "'{{}}', 'Done.', '', CASE WHEN {failed} THEN 'Boom.' ELSE '' END, '', "
        "strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || (g * 20) || ' seconds'), "
        "strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || (g * 20 + 1) || ' seconds'), "
        "1.0, printf('%064d', 0), 'bench-host', 4242, '', '', 0, 0"
    ),
    "mariadb": (
        "CONCAT('bench_status_', LPAD(g %% {commands}, 3, '0')), '{app}', '', "
        "CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END, NOT {failed}, "
        "g %% {commands} %% 4 <> 0, 0, "
        "'{{}}', 'Done.', '', CASE WHEN {failed} THEN 'Boom.' ELSE '' END, '', "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL g * 20 SECOND, "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL g * 20 + 1 SECOND, "
        "1.0, REPEAT('0', 64), 'bench-host', 4242, '', '', 0, 0"
    ),
}


def seed(bench, first: int, last: int, commands: int) -> float:
    """Insert history rows numbered ``first``..``last``, then ANALYZE; return seconds."""
    started = time.perf_counter()
    failed = _FAILED[bench.backend].format(commands=commands)
    values = _VALUES[bench.backend].format(
        commands=commands, app=generated.STATUS_APP, failed=failed
    )
    insert_series(bench, TABLE, _COLUMNS, values, first, last)
    return time.perf_counter() - started


# -- the child ------------------------------------------------------------------
def _hold_once_keys(commands: int) -> None:
    """Give each run_once command's claim of success (``once_key``) to one of its
    successes, as its runs would have: its newest, or for 1 command in 10 its oldest
    (forced reruns succeeded since). Seeding, not timed: the rows come without."""
    from django.db import transaction
    from django.db.models import Max, Min

    from managed_commands.models import CommandExecution
    from managed_commands.recorder import command_key

    runs = CommandExecution.objects.all()
    successes = runs.filter(success=True).values_list("command_name")
    oldest, newest = (dict(successes.annotate(pk=first("pk"))) for first in (Min, Max))
    with transaction.atomic():
        runs.filter(once_key__isnull=False).update(once_key=None)
        for number in range(commands):
            name = generated.status_name(number)
            if generated.is_run_once(number) and name in newest:
                holder = (oldest if number % 10 == 1 else newest)[name]
                runs.filter(pk=holder).update(once_key=command_key(name, ""))


def _measure(commands: int) -> dict[str, object]:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from managed_commands.status import command_statuses

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = get_user_model().objects.filter(username="bench").first()
    client = Client()
    client.force_login(user or get_user_model().objects.create_superuser("bench", "", "bench"))

    def show() -> None:
        call_command("show_managed_commands", stdout=sink)

    def page(url: str):
        def get() -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return get

    calls = {
        "statuses": command_statuses,
        "show": show,
        "overview": page(reverse("admin:managed_commands_commandexecution_overview")),
        "index": page(reverse("admin:index")),
    }
    # Each once first: imports the command modules, renders the templates, and reads
    # what the database keeps in its cache (InnoDB keeps a page only once read again
    # a second or more later).
    for call in calls.values():
        call()
    found: dict[str, object] = {}
    for key, call in calls.items():
        times = []
        for _ in range(TIMED_CALLS):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as captured:
            call()
        found[key] = {"seconds": times, "queries": len(captured.captured_queries)}
    listed = StringIO()
    call_command("show_managed_commands", stdout=listed)
    missing = [n for n in map(generated.status_name, range(commands)) if n not in listed.getvalue()]
    assert not missing, f"not listed: {missing[:5]}"
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, required=True)
    parser.add_argument("--hold-once-keys", action="store_true", help="seed, do not measure")
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    if options.hold_once_keys:
        import django

        django.setup()
        _hold_once_keys(options.commands)
        found = {}
    else:
        found = _measure(options.commands)
    Path(options.out).write_text(json.dumps(found))


# -- the parent -----------------------------------------------------------------
def run(projects: dict, options) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="mc-bench-apps-") as tmp:
        directory = generated.install(Path(tmp), options.commands, options.chain)
        return [table(bench, directory, options) for bench in projects.values()]


def table(first, directory: Path, options) -> Table:
    sizes = sorted(set(options.history_rows))
    # The backend's project holds the smallest size (its history then stays for the
    # parts after this one, as before); each other size gets a database of its own.
    extra = [project(first.backend, first.workdir / f"status-{size}") for size in sizes[1:]]
    try:
        benches = [
            generated.using(bench, directory, generated.STATUS_APP) for bench in (first, *extra)
        ]
        seeding = []
        for size, bench in zip(sizes, benches, strict=True):
            seconds = seed(bench, 1, size, options.commands)
            seeding.append(f"{size:,} rows in {seconds:.1f} s")
            run_module(bench, __name__, "--commands", str(options.commands), "--hold-once-keys")
            if bench.backend == "postgresql":
                # As autovacuum would soon after: the visibility map lets the seeks'
                # index-only scans skip the table.
                bench.sql(f"VACUUM ANALYZE {TABLE}")
        results = [_measured(benches, options) for _ in range(options.status_runs)]
    finally:
        for bench in extra:
            bench.drop()
    found = [_pooled([result[i] for result in results]) for i in range(len(sizes))]
    rows = [
        [
            f"{size:,}",
            *(
                cell
                for key in ("statuses", "show", "overview")
                for cell in (f"{result[key]['queries']}", _ms(result[key]["seconds"]))
            ),
            _ms(result["index"]["seconds"]),
            _ms(result["processes"]["show_managed_commands"]),
            _ms(result["processes"]["bench_noop"]),
        ]
        for size, result in zip(sizes, found, strict=True)
    ]
    return Table(
        f"Status at scale, {first.backend}",
        [
            "history rows",
            "status read (`command_statuses()`) queries",
            "ms",
            "`show_managed_commands` queries",
            "ms",
            "admin overview queries",
            "ms",
            "plain Django: admin index ms",
            "`manage.py show_managed_commands` process ms",
            "plain Django: `manage.py` no-op process ms",
        ],
        rows,
        [
            f"{options.commands} generated managed commands (3 in 4 run_once, some requiring "
            "another command or a migration), each with a source hash that differs from the "
            "file (so every command's file is hashed for the 'changed' mark). The history "
            "rows are spread evenly over them, 20 s apart: 1 run in 20 of each command "
            "failed (the newest run of 1 command in 20); each run_once command's newest "
            "success holds its claim of success (`once_key`), or for 1 in 10 its oldest one "
            "(forced reruns succeeded since).",
            f"One database per size, each measured in turn by each of {options.status_runs} "
            "rounds. In process (a child per size and round): the status read "
            "(`command_statuses()`), `call_command('show_managed_commands')` and a "
            "logged-in superuser's GET of the admin overview and of Django's admin index "
            f"(the plain page alongside), {TIMED_CALLS} calls each once all four had a first "
            "one; ms is the median of every round's calls, queries are counted on one more "
            "call (the admin's include the session and the user).",
            "Processes: `manage.py show_managed_commands` and a plain no-op command "
            "(`bench_noop`) of the same project, one of each per size and round; median wall "
            "time, system checks included.",
            f"Seeded in SQL (INSERT ... SELECT, then ANALYZE; on PostgreSQL a VACUUM ANALYZE "
            f"once the claims of success are held): {'; '.join(seeding)}.",
            _verdict(first.backend, sizes, found),
        ],
    )


def _measured(benches: list, options) -> list[dict]:
    """One round: the child's figures and one process of each kind, for every size."""
    results = []
    for bench in benches:
        result = run_module(bench, __name__, "--commands", str(options.commands))
        result["processes"] = {
            name: [run_process(bench, name).seconds]
            for name in ("show_managed_commands", "bench_noop")
        }
        results.append(result)
    return results


def _pooled(rounds: list[dict]) -> dict:
    """The rounds of one size: the median of all their timings, the queries of the last."""
    pooled = {
        key: {
            "seconds": median([s for found in rounds for s in found[key]["seconds"]]),
            "queries": rounds[-1][key]["queries"],
        }
        for key in ("statuses", "show", "overview", "index")
    }
    pooled["processes"] = {
        name: median([s for found in rounds for s in found["processes"][name]])
        for name in ("show_managed_commands", "bench_noop")
    }
    return pooled


def _verdict(backend: str, sizes: list[int], results: list[dict]) -> str:
    """The largest history against the smallest: as fast, and the same queries; and
    the status read within its bound."""
    small, large = results[0], results[-1]
    parts, met = [], True
    views = (
        ("statuses", "the status read"),
        ("show", "`show_managed_commands`"),
        ("overview", "the admin overview"),
    )
    for key, label in views:
        times = large[key]["seconds"] / small[key]["seconds"]
        same = large[key]["queries"] == small[key]["queries"]
        met = met and times <= SCALE_TARGET and same
        queries = "the same queries" if same else "MORE queries"
        parts.append(f"{label} {times:.2f} x, {queries}")
    verdict = (
        f"Target, {sizes[-1]:,} rows against {sizes[0]:,}: as fast (at most {SCALE_TARGET} x "
        f"in process) with the same queries: {'; '.join(parts)}: {'met' if met else 'MISSED'}."
    )
    if backend not in READ_TARGET_BACKENDS:
        return verdict
    read = large["statuses"]["seconds"]
    within = "met" if read <= READ_TARGET else "MISSED"
    return (
        f"{verdict} Target, the status read at {sizes[-1]:,} rows: at most "
        f"{_ms(READ_TARGET)} ms: {_ms(read)} ms: {within}."
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


if __name__ == "__main__":
    main()
