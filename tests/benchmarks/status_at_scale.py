"""Part 4: ``show_managed_commands`` and the admin overview at 100,000 and 1,000,000 history rows.

A generated app holds the managed commands (``generated.py``); the history is
seeded in SQL, in steps (each size of ``--history-rows``), spread over those
commands. At each step a child process (``python -m
tests.benchmarks.status_at_scale``) counts the queries and times, in process,
``show_managed_commands`` and the admin overview next to Django's own admin
index; then whole ``manage.py show_managed_commands`` processes are timed next
to a plain no-op command of the same project.
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
from tests.benchmarks.harness import Table, insert_series, median, run_module, run_process
from tests.processes import TABLE

# "As fast": the largest history within this factor of the smallest (the noise of a
# shared 2-core machine is about as large), with the same number of queries.
SCALE_TARGET = 1.10
TIMED_CALLS = 5

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

    _hold_once_keys(commands)

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
    found: dict[str, object] = {}
    for key, call in calls.items():
        call()  # imports the command modules, renders the templates once
        times = []
        for _ in range(TIMED_CALLS):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as captured:
            call()
        found[key] = {"seconds": median(times), "queries": len(captured.captured_queries)}
    listed = StringIO()
    call_command("show_managed_commands", stdout=listed)
    missing = [n for n in map(generated.status_name, range(commands)) if n not in listed.getvalue()]
    assert not missing, f"not listed: {missing[:5]}"
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    Path(options.out).write_text(json.dumps(_measure(options.commands)))


# -- the parent -----------------------------------------------------------------
def run(projects: dict, options) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="mc-bench-apps-") as tmp:
        directory = generated.install(Path(tmp), options.commands, options.chain)
        return [
            table(generated.using(bench, directory, generated.STATUS_APP), options)
            for bench in projects.values()
        ]


def table(bench, options) -> Table:
    sizes = sorted(set(options.history_rows))
    rows, seeding, results, seeded = [], [], [], 0
    for size in sizes:
        seconds = seed(bench, seeded + 1, size, options.commands)
        seeding.append(f"{size - seeded:,} rows in {seconds:.1f} s")
        seeded = size
        result = run_module(bench, __name__, "--commands", str(options.commands))
        processes: dict[str, list[float]] = {"show_managed_commands": [], "bench_noop": []}
        for _ in range(options.status_runs):
            for name, timings in processes.items():
                timings.append(run_process(bench, name).seconds)
        result["processes"] = {name: median(timings) for name, timings in processes.items()}
        results.append(result)
        show, overview, index = result["show"], result["overview"], result["index"]
        rows.append(
            [
                f"{size:,}",
                f"{show['queries']}",
                _ms(show["seconds"]),
                f"{overview['queries']}",
                _ms(overview["seconds"]),
                _ms(index["seconds"]),
                _ms(result["processes"]["show_managed_commands"]),
                _ms(result["processes"]["bench_noop"]),
            ]
        )
    return Table(
        f"Status at scale, {bench.backend}",
        [
            "history rows",
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
            "another command or a migration); the history rows are spread evenly over them, "
            "1 in 20 failed, each with a source hash that differs from the file (so every "
            "command's file is hashed for the 'changed' mark).",
            "In process (a child per history size): `call_command('show_managed_commands')` "
            "and a logged-in superuser's GET of the admin overview and of Django's admin "
            f"index (the plain page alongside), each the median of {TIMED_CALLS} calls after "
            "a first one; queries counted on one more call (the admin's include the session "
            "and the user).",
            f"Processes: `manage.py show_managed_commands` and a plain no-op command "
            f"(`bench_noop`) of the same project, {options.status_runs} runs each, "
            "alternating, system checks included; median wall time.",
            f"Seeded in SQL (INSERT ... SELECT, then ANALYZE): {'; '.join(seeding)}.",
            _verdict(sizes, results),
        ],
    )


def _verdict(sizes: list[int], results: list[dict]) -> str:
    """The largest history against the smallest: as fast, and the same queries."""
    small, large = results[0], results[-1]
    parts, met = [], True
    for key, label in (("show", "`show_managed_commands`"), ("overview", "the admin overview")):
        times = large[key]["seconds"] / small[key]["seconds"]
        same = large[key]["queries"] == small[key]["queries"]
        met = met and times <= SCALE_TARGET and same
        queries = "the same queries" if same else "MORE queries"
        parts.append(f"{label} {times:.2f} x, {queries}")
    return (
        f"Target, {sizes[-1]:,} rows against {sizes[0]:,}: as fast (at most {SCALE_TARGET} x "
        f"in process) with the same queries: {'; '.join(parts)}: {'met' if met else 'MISSED'}."
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


if __name__ == "__main__":
    main()
