"""Part 4: the status read, ``show_managed_commands`` and the admin overview at 100,000
and 1,000,000 history rows; as the ``cadence`` part, the same read of recurring
commands with the health check, the cadence JSON view and the cadence gate; as the
``console`` part, the admin console's pages beside the admin's changelist.

A generated app holds the managed commands (``generated.py``); each size of
``--history-rows`` has a database of its own, its history seeded in SQL and
spread over those commands. Each round measures every size in turn, so that the
load of a shared machine weighs on each alike: a child process (``python -m
tests.benchmarks.status_at_scale``) counts the queries and times, in process,
the status read (``command_statuses()``), ``show_managed_commands`` and the
admin overview next to Django's own admin index; then a whole ``manage.py
show_managed_commands`` process is timed next to a plain no-op command of the
same project. The other parts measure other calls the same way (``Variant``),
and every part counts the queries at a few commands too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Variant:
    """What a part measures: its commands, the calls timed in process beside Django's
    admin index (key, label), and the ``manage.py`` process timed beside a no-op."""

    part: str
    title: str
    calls: tuple[tuple[str, str], ...]
    # Empty: no process timed.
    process: tuple[str, ...]
    # Keys of ``calls`` bound to READ_TARGET, and those as fast at every size.
    bounded: tuple[str, ...]
    scaled: tuple[str, ...]
    process_exit: int = 0
    # The commands declare expected_every (``generated.expected_every()``).
    recurring: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.calls)


STATUS = Variant(
    "status",
    "Status at scale",
    (
        ("statuses", "status read (`command_statuses()`)"),
        ("show", "`show_managed_commands`"),
        ("overview", "admin overview"),
    ),
    ("show_managed_commands",),
    bounded=("statuses",),
    scaled=("statuses", "show", "overview"),
)
CADENCE = Variant(
    "cadence",
    "Cadence at scale",
    (
        ("statuses", "status read with the cadences (`command_statuses()`)"),
        ("health", "health check (django-health-check's view)"),
        ("cadence", "`cadence_view` (JSON)"),
        ("check", "`show_managed_commands --check-cadence`"),
    ),
    ("show_managed_commands", "--check-cadence"),
    bounded=("statuses", "health", "cadence", "check"),
    scaled=(),
    process_exit=1,
    recurring=True,
)
CONSOLE = Variant(
    "console",
    "Console at scale",
    (
        ("command", "command page"),
        ("overview", "overview"),
        ("watch", "watch view (JSON)"),
        ("changelist", "plain Django: the admin's changelist"),
    ),
    (),
    bounded=("command", "overview", "watch"),
    scaled=(),
)
VARIANTS = {variant.part: variant for variant in (STATUS, CADENCE, CONSOLE)}
# The command whose page the console part opens: it requires another command.
CONSOLE_COMMAND = generated.status_name(1)
# Seconds between two runs of one recurring command in the seeded history (20 s between
# two rows at 1,000 commands, as in the status part).
PERIOD = 20_000
# The status part's history: rows 20 s apart from this moment.
_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
_STEP = 20

# "As fast": the largest history within this factor of the smallest (the noise of a
# shared 2-core machine is about as large), with the same number of queries.
SCALE_TARGET = 1.10
# ``Variant.bounded`` at the largest size (each call), on SQLite and PostgreSQL.
READ_TARGET = 0.100
READ_TARGET_BACKENDS = ("sqlite", "postgresql")
# Calls timed per view in each round (once every view had a first one).
TIMED_CALLS = 3

# One row per number g, {step} s apart from {since}, of command g % commands: 1 run in
# 20 of each command failed (the newest run of 1 command in 20), the rest succeeded;
# run_once as generated. (The PostgreSQL and MariaDB drivers take %s parameters, so
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
        "{run_once}, false, "
        "'{{}}', 'Done.', '', CASE WHEN {failed} THEN 'Boom.' ELSE '' END, '', "
        "timestamptz '{since}+00' + g * interval '{step} seconds', "
        "timestamptz '{since}+00' + g * interval '{step} seconds' + interval '1 second', "
        "1.0, repeat('0', 64), 'bench-host', 4242, '', '', false, false"
    ),
    "sqlite": (
        "'bench_status_' || printf('%03d', g % {commands}), '{app}', '', "
        "CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END, NOT {failed}, "
        "{run_once}, 0, "
        "'{{}}', 'Done.', '', CASE WHEN {failed} THEN 'Boom.' ELSE '' END, '', "
        "strftime('%Y-%m-%d %H:%M:%f', '{since}', '+' || (g * {step}) || ' seconds'), "
        "strftime('%Y-%m-%d %H:%M:%f', '{since}', '+' || (g * {step} + 1) || ' seconds'), "
        "1.0, printf('%064d', 0), 'bench-host', 4242, '', '', 0, 0"
    ),
    "mariadb": (
        "CONCAT('bench_status_', LPAD(g %% {commands}, 3, '0')), '{app}', '', "
        "CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END, NOT {failed}, "
        "{run_once}, 0, "
        "'{{}}', 'Done.', '', CASE WHEN {failed} THEN 'Boom.' ELSE '' END, '', "
        "TIMESTAMP '{since}' + INTERVAL g * {step} SECOND, "
        "TIMESTAMP '{since}' + INTERVAL g * {step} + 1 SECOND, "
        "1.0, REPEAT('0', 64), 'bench-host', 4242, '', '', 0, 0"
    ),
}


def period(commands: int, variant: Variant) -> int | None:
    """Seconds between two runs of one command (a multiple of ``commands``) when the
    commands are recurring; None for the status part's."""
    return max(PERIOD // commands, 1) * commands if variant.recurring else None


def seed(bench, first: int, last: int, commands: int, every: int | None = None) -> float:
    """Insert history rows numbered ``first``..``last``, then ANALYZE; return seconds.

    ``every`` (``period()``): each command runs every ``every`` seconds and the newest
    row is half a period old, so that each command's newest run is 0.5 to 1.5 periods
    old; else the rows are 20 s apart from 2024-01-01.
    """
    started = time.perf_counter()
    if every is None:
        since, step = _EPOCH, _STEP
    else:
        step = every // commands
        since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
            seconds=last * step + every / 2
        )
    modulo = "%" if bench.backend == "sqlite" else "%%"
    run_once = [n for n in range(commands) if generated.is_run_once(n, every)]
    values = _VALUES[bench.backend].format(
        commands=commands,
        app=generated.STATUS_APP,
        failed=_FAILED[bench.backend].format(commands=commands),
        run_once=generated.numbers_sql(run_once, f"g {modulo} {commands}"),
        since=since.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        step=step,
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


def _measure(commands: int, variant: Variant) -> dict[str, object]:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from managed_commands.models import CommandExecution
    from managed_commands.status import command_statuses

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = get_user_model().objects.filter(username="bench").first()
    client = Client()
    client.force_login(user or get_user_model().objects.create_superuser("bench", "", "bench"))

    def show() -> None:
        call_command("show_managed_commands", stdout=sink)

    def gate() -> None:
        # The seeded history has late and failing recurring commands: the gate fails.
        try:
            call_command("show_managed_commands", "--check-cadence", stdout=sink, stderr=sink)
        except CommandError:
            return
        raise AssertionError("--check-cadence found no alarm")

    def page(url: str, status: int = 200):
        def get() -> None:
            response = client.get(url)
            assert response.status_code == status, (url, response.status_code)

        return get

    def admin(view: str, **kwargs: object):
        return page(reverse(f"admin:managed_commands_commandexecution_{view}", kwargs=kwargs))

    def watched() -> int:
        """The newest run of the command the console's pages show."""
        runs = CommandExecution.objects.filter(command_name=CONSOLE_COMMAND)
        return runs.order_by("-executed_at", "-pk").values_list("pk", flat=True)[0]

    # What each call is, made only for the calls of the variant.
    every = {
        "statuses": lambda: command_statuses,
        "show": lambda: show,
        "overview": lambda: admin("overview"),
        # tests/urls.py: django-health-check's view with our check only, and the JSON
        # view; both answer that something is wrong (500, 503), naming the commands.
        "health": lambda: page("/ht/?format=json", 500),
        "cadence": lambda: page("/mc/cadence/", 503),
        "check": lambda: gate,
        "command": lambda: admin("command", name=CONSOLE_COMMAND),
        "watch": lambda: admin("watch", object_id=watched()),
        "changelist": lambda: admin("changelist"),
        "index": lambda: page(reverse("admin:index")),
    }
    calls = {key: every[key]() for key in (*variant.keys, "index")}
    # Each once first: imports the command modules, renders the templates, reads
    # what the database keeps in its cache (InnoDB keeps a page only once read again
    # a second or more later), and records the cadences first seen and the late
    # spells alerted.
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
    parser.add_argument("--variant", choices=VARIANTS, default=STATUS.part)
    parser.add_argument("--hold-once-keys", action="store_true", help="seed, do not measure")
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    if options.hold_once_keys:
        import django

        django.setup()
        _hold_once_keys(options.commands)
        found = {}
    else:
        found = _measure(options.commands, VARIANTS[options.variant])
    Path(options.out).write_text(json.dumps(found))


# -- the parent -----------------------------------------------------------------
def run(projects: dict, options) -> list[Table]:
    return _run(projects, options, STATUS)


def run_cadence(projects: dict, options) -> list[Table]:
    return _run(projects, options, CADENCE)


def run_console(projects: dict, options) -> list[Table]:
    return _run(projects, options, CONSOLE)


def _run(projects: dict, options, variant: Variant) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="mc-bench-apps-") as tmp:
        apps = {
            commands: generated.install(
                Path(tmp) / str(commands), commands, options.chain, period(commands, variant)
            )
            for commands in {options.commands, options.few_commands}
        }
        return [table(bench, apps, options, variant) for bench in projects.values()]


def _seeded(bench, directory: Path, size: int, commands: int, variant: Variant):
    """``bench`` with the generated app of ``directory``, its history seeded with
    ``size`` rows spread over ``commands`` commands; and how long that took."""
    bench = generated.using(bench, directory, generated.STATUS_APP)
    seconds = seed(bench, 1, size, commands, period(commands, variant))
    if not variant.recurring:  # recurring commands are never run_once
        run_module(bench, __name__, "--commands", str(commands), "--hold-once-keys")
    if bench.backend == "postgresql":
        # As autovacuum would soon after: the visibility map lets the seeks'
        # index-only scans skip the table.
        bench.sql(f"VACUUM ANALYZE {TABLE}")
    return bench, f"{size:,} rows in {seconds:.1f} s"


def table(first, apps: dict[int, Path], options, variant: Variant) -> Table:
    sizes = sorted(set(options.history_rows))
    commands, few = options.commands, options.few_commands
    # The backend's project holds the smallest size (its history then stays for the
    # parts after this one, as before); each other size gets a database of its own,
    # and so does the smallest size at a few commands.
    extra = [project(first.backend, first.workdir / f"{variant.part}-{size}") for size in sizes[1:]]
    fewer = project(first.backend, first.workdir / f"{variant.part}-few")
    try:
        seeded = [
            _seeded(bench, apps[commands], size, commands, variant)
            for size, bench in zip(sizes, (first, *extra), strict=True)
        ]
        benches = [bench for bench, _ in seeded]
        small, seeding = _seeded(fewer, apps[few], sizes[0], few, variant)
        results = [_measured(benches, commands, variant) for _ in range(options.status_runs)]
        results_few = [_measured([small], few, variant) for _ in range(options.status_runs)]
    finally:
        for bench in (*extra, fewer):
            bench.drop()
    found = [_pooled([result[i] for result in results], variant) for i in range(len(sizes))]
    at_few = _pooled([result[0] for result in results_few], variant)
    labels = [f"{size:,}" for size in sizes] + [f"{sizes[0]:,}, {few} commands"]
    rows = [
        [
            label,
            *(
                cell
                for key in variant.keys
                for cell in (f"{result[key]['queries']}", _ms(result[key]["seconds"]))
            ),
            _ms(result["index"]["seconds"]),
            *(_ms(result["processes"][name]) for name in _processes(variant)),
        ]
        for label, result in zip(labels, [*found, at_few], strict=True)
    ]
    return Table(
        f"{variant.title}, {first.backend}",
        [
            "history rows",
            *(cell for _, label in variant.calls for cell in (f"{label} queries", "ms")),
            "plain Django: admin index ms",
            *(
                (
                    f"`manage.py {' '.join(variant.process)}` process ms",
                    "plain Django: `manage.py` no-op process ms",
                )
                if variant.process
                else ()
            ),
        ],
        rows,
        [
            _mix(commands, few, variant),
            f"One database per size (and one at {few} commands, the smallest size), each "
            f"measured in turn by each of {options.status_runs} rounds. In process (a child "
            f"per size and round): {_calls(variant)} and, alongside, a logged-in "
            f"superuser's GET of Django's admin index, {TIMED_CALLS} calls each once all "
            "had a first one; ms is the median of every round's calls, queries are counted "
            "on one more call (a page's include the session and the user).",
            *(
                [
                    f"Processes: `manage.py {' '.join(variant.process)}` and a plain no-op "
                    "command (`bench_noop`) of the same project, one of each per size and "
                    "round; median wall time, system checks included."
                ]
                if variant.process
                else []
            ),
            f"Seeded in SQL (INSERT ... SELECT, then ANALYZE; on PostgreSQL a VACUUM ANALYZE "
            f"once the claims of success are held): "
            f"{'; '.join(s for _, s in seeded)}; at {few} commands, {seeding}.",
            _verdict(first.backend, sizes, found, at_few, few, variant),
        ],
    )


def _mix(commands: int, few: int, variant: Variant) -> str:
    if not variant.recurring:
        return (
            f"{commands} generated managed commands (3 in 4 run_once, some requiring "
            "another command or a migration), each with a source hash that differs from "
            "the file (so every command's file is hashed for the 'changed' mark). The "
            "history rows are spread evenly over them, 20 s apart: 1 run in 20 of each "
            "command failed (the newest run of 1 command in 20); each run_once command's "
            "newest success holds its claim of success (`once_key`), or for 1 in 10 its "
            "oldest one (forced reruns succeeded since)."
        )
    every = period(commands, variant) or 0
    return (
        f"{commands} generated recurring commands (`expected_every`; some requiring "
        "another command or a migration). The history rows are spread evenly over them, "
        f"each command running every {every:,} s, its newest run 0.5 to 1.5 of that "
        "period old: 1 run in 20 of each command failed (the newest run of 1 command in "
        "20: failing); 1 command in 10 expects a run every quarter period (late), the "
        "others every 3 periods (on time). The first call of each child records every "
        "cadence first seen and alerts every late spell (untimed); the calls timed and "
        "counted find them recorded, as every look after the first does."
    )


def _calls(variant: Variant) -> str:
    if variant is CONSOLE:
        return (
            "a logged-in superuser's GET of the console's page of one command "
            f"(`{CONSOLE_COMMAND}`, which requires another), of the overview, of the watch "
            "view of that command's newest run and, beside them, of the admin's changelist "
            "of the runs"
        )
    if not variant.recurring:
        return (
            "the status read (`command_statuses()`), "
            "`call_command('show_managed_commands')` and a logged-in superuser's GET of "
            "the admin overview"
        )
    return (
        "the status read with the cadences (`command_statuses()`), a logged-in "
        "superuser's GET of django-health-check's view with `CommandsHealthCheck` "
        "(`/ht/?format=json`, 500: the check fails naming the commands) and of "
        "`managed_commands.health.cadence_view` (503), and "
        "`call_command('show_managed_commands', '--check-cadence')` (the listing, then "
        "one line per alarm and a `CommandError`)"
    )


def _processes(variant: Variant) -> tuple[str, ...]:
    return (" ".join(variant.process), "bench_noop") if variant.process else ()


def _measured(benches: list, commands: int, variant: Variant) -> list[dict]:
    """One round: the child's figures and one process of each kind, for every size."""
    results = []
    for bench in benches:
        result = run_module(bench, __name__, "--commands", str(commands), "--variant", variant.part)
        timed = {" ".join(variant.process): variant.process} if variant.process else {}
        result["processes"] = {
            name: [run_process(bench, *argv, exit_code=variant.process_exit).seconds]
            for name, argv in timed.items()
        }
        if variant.process:
            result["processes"]["bench_noop"] = [run_process(bench, "bench_noop").seconds]
        results.append(result)
    return results


def _pooled(rounds: list[dict], variant: Variant) -> dict:
    """The rounds of one size: the median of all their timings, the queries of the last."""
    pooled = {
        key: {
            "seconds": median([s for found in rounds for s in found[key]["seconds"]]),
            "queries": rounds[-1][key]["queries"],
        }
        for key in (*variant.keys, "index")
    }
    pooled["processes"] = {
        name: median([s for found in rounds for s in found["processes"][name]])
        for name in _processes(variant)
    }
    return pooled


def _verdict(
    backend: str, sizes: list[int], results: list[dict], at_few: dict, few: int, variant: Variant
) -> str:
    """The largest history against the smallest: as fast (``variant.scaled``), the
    same queries (at a few commands too); and the bounded calls within READ_TARGET."""
    small, large = results[0], results[-1]
    labels = dict(variant.calls)
    parts, met = [], True
    for key, label in variant.calls:
        same = large[key]["queries"] == small[key]["queries"] == at_few[key]["queries"]
        queries = "the same queries" if same else "NOT the same queries"
        met = met and same
        if key in variant.scaled:
            times = large[key]["seconds"] / small[key]["seconds"]
            met = met and times <= SCALE_TARGET
            parts.append(f"{label} {times:.2f} x, {queries}")
        else:
            parts.append(f"{label}: {queries}")
    fast = f"as fast (at most {SCALE_TARGET} x in process) " if variant.scaled else ""
    verdict = (
        f"Target, {sizes[-1]:,} rows against {sizes[0]:,} (and {few} commands): {fast}with "
        f"the same queries: {'; '.join(parts)}: {'met' if met else 'MISSED'}."
    )
    if backend not in READ_TARGET_BACKENDS:
        return verdict
    bounded = [(labels[key], large[key]["seconds"]) for key in variant.bounded]
    within = "met" if all(seconds <= READ_TARGET for _, seconds in bounded) else "MISSED"
    times = "; ".join(f"{label} {_ms(seconds)} ms" for label, seconds in bounded)
    return (
        f"{verdict} Target, at {sizes[-1]:,} rows: at most {_ms(READ_TARGET)} ms: "
        f"{times}: {within}."
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


if __name__ == "__main__":
    main()
