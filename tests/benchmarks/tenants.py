"""Part 7: the operating commands across many django-tenants tenants (PostgreSQL only).

``managed_commands`` is in TENANT_APPS (a history table in every tenant's
schema, ``settings_tenants.py``) with ``--tenant-commands`` managed commands:
the generated ones plus the two of the test tenant app. One tenant is created
and migrated by django-tenants and deployed by ``run_pending_commands``; the
others are clones of its schema (tables, indexes, rows), made in SQL, the
history's scope and keys rewritten for each.

Measured with nothing pending, at two history sizes: whole processes of
``run_pending_commands --all-tenants`` and ``show_managed_commands --all-tenants``,
and, in a child process, their queries. Then with one command pending in every
tenant: the deploy's cost per tenant next to one tracked run of that command.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tests import backends
from tests.benchmarks import generated
from tests.benchmarks.harness import Table, median, run_module, run_process
from tests.processes import TABLE, ProcessProject

SETTINGS = "tests.benchmarks.settings_tenants"
TARGET_SECONDS = 10
TEMPLATE = "t_0000"
# Commands of the test tenant app, installed with the generated ones.
TENANT_APP_COMMANDS = 2
# A generated run_once command that requires nothing: the one left pending.
PENDING = generated.status_name(2)
TRACKED_RUNS = 20

_CLONE = """
CREATE OR REPLACE FUNCTION mc_bench_clone(source text, target text) RETURNS void AS $$
DECLARE
    found record;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target);
    FOR found IN SELECT tablename FROM pg_tables WHERE schemaname = source LOOP
        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING ALL)',
                       target, found.tablename, source, found.tablename);
        EXECUTE format('INSERT INTO %I.%I SELECT * FROM %I.%I',
                       target, found.tablename, source, found.tablename);
    END LOOP;
    -- LIKE gives each identity column a sequence of its own, still at 1.
    FOR found IN SELECT table_name, column_name FROM information_schema.columns
                 WHERE table_schema = target AND is_identity = 'YES' LOOP
        EXECUTE format(
            'SELECT setval(pg_get_serial_sequence(%L, %L), COALESCE(max(%I), 0) + 1, false) '
            'FROM %I.%I', format('%I.%I', target, found.table_name), found.column_name,
            found.column_name, target, found.table_name);
    END LOOP;
    -- Each tenant's runs are recorded under its own scope, keyed by it.
    EXECUTE format(
        'UPDATE %I.managed_commands_commandexecution SET scope = %L, once_key = CASE '
        'WHEN once_key IS NULL THEN NULL ELSE encode(sha256(convert_to(%L, ''UTF8'') '
        '|| ''\\x00''::bytea || convert_to(command_name, ''UTF8'')), ''hex'') END',
        target, target, target);
END $$ LANGUAGE plpgsql
"""

# Run in each tenant's schema in turn, one transaction each: a DO block over
# 1,000 schemas takes more locks than PostgreSQL's lock table holds by default.
_PAD = (
    'INSERT INTO "{schema}".managed_commands_commandexecution ({columns}) '
    'SELECT {values} FROM "{schema}".managed_commands_commandexecution '
    "CROSS JOIN generate_series(1, {copies}) AS copy"
)
_FORGET = 'DELETE FROM "{schema}".managed_commands_commandexecution WHERE command_name = %s'


# Some run_once commands require a repeatable one, which has to succeed first: every
# command runs once, each after those it requires.
_RUN_EVERY_COMMAND = f"""
import os
from django.core.management import call_command
from django_tenants.utils import schema_context
from managed_commands.loader import discover, requirement_graph
commands = discover().commands
sink = open(os.devnull, "w")
with schema_context("{TEMPLATE}"):
    for name in requirement_graph(commands.values()).plan(list(commands)):
        call_command(name, stdout=sink)
"""


def schema_name(number: int) -> str:
    return f"t_{number:04d}"


# -- the child ------------------------------------------------------------------
def _counted(*argv: str) -> tuple[float, int]:
    """Seconds and statements of one ``call_command(*argv)``, on every connection.

    Counted by an execute wrapper: ``CaptureQueriesContext`` keeps the last
    9,000 queries only, fewer than 1,000 tenants send.
    """
    from contextlib import ExitStack

    from django.core.management import call_command
    from django.db import connections

    sink = open(os.devnull, "w")  # noqa: SIM115 - closed with the process
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(count))
        started = time.perf_counter()
        call_command(*argv, stdout=sink, stderr=sink)
        seconds = time.perf_counter() - started
    return seconds, statements


def _measure_status() -> dict[str, object]:
    import django

    django.setup()
    from managed_commands.tenants import deploy_targets

    found: dict[str, object] = {"tenants": len(deploy_targets())}
    for name in ("run_pending_commands", "show_managed_commands"):
        _counted(name, "--all-tenants")  # imports the command modules
        found[name] = _counted(name, "--all-tenants")
    return found


def _measure_deploy() -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import tenant_context

    from managed_commands.tenants import deploy_targets

    tenants = deploy_targets()
    sink = open(os.devnull, "w")  # noqa: SIM115 - closed with the process
    runs = []
    for tenant in tenants[:TRACKED_RUNS]:
        with tenant_context(tenant):
            started = time.perf_counter()
            call_command(PENDING, stdout=sink, stderr=sink)
            runs.append(time.perf_counter() - started)
    with connection.cursor() as cursor:  # pending again where it just ran
        for tenant in tenants[:TRACKED_RUNS]:
            cursor.execute(_FORGET.format(schema=tenant.schema_name), [PENDING])
    seconds, queries = _counted("run_pending_commands", "--all-tenants")
    return {
        "tenants": len(tenants),
        "tracked_run": median(runs[1:]),  # the first one imports the command
        "deploy": seconds,
        "queries": queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("status", "deploy"), required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    measure = _measure_status if options.mode == "status" else _measure_deploy
    Path(options.out).write_text(json.dumps(measure()))


# -- the parent -----------------------------------------------------------------
def run(projects: dict, options) -> list[Table]:
    if "postgresql" not in projects:
        return []  # django-tenants needs PostgreSQL
    with tempfile.TemporaryDirectory(prefix="mc-bench-tenants-") as tmp:
        commands = options.tenant_commands - TENANT_APP_COMMANDS
        directory = generated.install(Path(tmp) / "apps", commands, 0)
        bench = ProcessProject("postgresql", Path(tmp), settings=SETTINGS)
        bench.env["MC_BENCH_GENERATED_PATH"] = str(directory)
        bench.env["MC_BENCH_GENERATED_APPS"] = generated.STATUS_APP
        bench.env.pop("PYTHONUNBUFFERED", None)
        try:
            return [table(bench.create(), options)]
        finally:
            bench.drop()


def _execute(bench: ProcessProject, query: str) -> None:
    """Run ``query`` on the benchmark database, in autocommit mode."""
    with backends.connect("postgresql", bench.name) as conn:
        conn.execute(query)


def _in_every_tenant(bench: ProcessProject, statement: str, *params: object) -> None:
    """Run ``statement`` in the schema of each tenant but public, one at a time."""
    with backends.connect("postgresql", bench.name) as conn:
        schemas = conn.execute(
            "SELECT schema_name FROM public.tenants_client WHERE schema_name <> 'public'"
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(statement.format(schema=schema), params or None)


def _shell(bench: ProcessProject, *argv: str) -> None:
    result = bench.run(*argv, timeout=600)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(argv)}: {result.stderr[-2000:]}")


def seed(bench: ProcessProject, tenants: int) -> float:
    """Create the template tenant, deploy it, clone it into the others; return seconds."""
    started = time.perf_counter()
    create = (
        "from tests.tenants.models import Client\n"
        "Client(schema_name='public', name='Public').save(verbosity=0)\n"
        f"Client(schema_name='{TEMPLATE}', name='Template').save(verbosity=0)\n"
    )
    _shell(bench, "shell", "-v0", "-c", create)
    _shell(bench, "shell", "-v0", "-c", _RUN_EVERY_COMMAND)
    with backends.connect("postgresql", bench.name) as conn:
        conn.execute(_CLONE)
        for number in range(1, tenants):
            conn.execute("SELECT mc_bench_clone(%s, %s)", (TEMPLATE, schema_name(number)))
        conn.execute(
            "INSERT INTO public.tenants_client (schema_name, name) "
            "SELECT format('t_%%s', lpad(n::text, 4, '0')), 'Clone' "
            "FROM generate_series(1, %s) AS n",
            (tenants - 1,),
        )
        conn.execute("DROP FUNCTION mc_bench_clone")
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def pad(bench: ProcessProject, copies: int) -> int:
    """Add ``copies`` older copies of every run in every tenant; return rows per tenant."""
    columns = [
        name
        for (name,) in bench.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
            (TEMPLATE, TABLE),
        )
    ]
    older = {"lock_key": "NULL", "once_key": "NULL"}
    older["executed_at"] = "executed_at - copy * interval '1 day'"
    values = ", ".join(older.get(name, name) for name in columns)
    if copies:
        pad_one = _PAD.format(
            schema="{schema}", columns=", ".join(columns), values=values, copies=copies
        )
        _in_every_tenant(bench, pad_one)
        _execute(bench, "ANALYZE")
    [(rows,)] = bench.sql(f'SELECT count(*) FROM "{TEMPLATE}".{TABLE}')
    return int(rows)


def processes(bench: ProcessProject, runs: int) -> dict[str, float]:
    """Median wall time of whole processes: the two commands across tenants, a plain no-op."""
    argvs = {
        "run_pending_commands --all-tenants": ("run_pending_commands", "--all-tenants"),
        "show_managed_commands --all-tenants": ("show_managed_commands", "--all-tenants"),
        "plain no-op (`bench_noop`)": ("bench_noop",),
    }
    timings: dict[str, list[float]] = {label: [] for label in argvs}
    for _ in range(runs):
        for label, argv in argvs.items():
            timings[label].append(run_process(bench, *argv).seconds)
    return {label: median(found) for label, found in timings.items()}


def table(bench: ProcessProject, options) -> Table:
    tenants, runs = options.tenants, options.tenant_runs
    seconds = seed(bench, tenants)
    rows, queries = [], {}
    for copies in (0, options.tenant_history):
        history = pad(bench, copies)
        counted = run_module(bench, __name__, "--mode", "status")
        assert counted["tenants"] == tenants, counted
        timed = processes(bench, runs)
        for label, measured in timed.items():
            name = label.split()[0]
            in_process = counted.get(name)
            query_count = f"{in_process[1] / tenants:.2f}" if in_process else ""
            if in_process:
                queries.setdefault(name, set()).add(in_process[1])
            rows.append(
                [f"{history:,}", label, f"{measured:.2f}", query_count, _within(label, measured)]
            )
    _in_every_tenant(bench, _FORGET, PENDING)
    deploy = run_module(bench, __name__, "--mode", "deploy")
    per_tenant = deploy["deploy"] / deploy["tenants"]
    _in_every_tenant(bench, _FORGET, PENDING)
    whole = run_process(bench, "run_pending_commands", "--all-tenants").seconds
    constant = all(len(found) == 1 for found in queries.values())
    notes = [
        f"{tenants:,} tenants (schemas), each with {options.tenant_commands} managed commands "
        f"({options.tenant_commands - TENANT_APP_COMMANDS} generated, 3 in 4 run_once, and the "
        f"test tenant app's 2), `managed_commands` in TENANT_APPS. Seeding took {seconds:.0f} s: "
        "one tenant created and migrated by django-tenants, every command run once in it, "
        "the others cloned from its schema in SQL (`CREATE TABLE ... "
        "(LIKE ... INCLUDING ALL)` and the rows; no foreign keys).",
        "History rows per tenant: one successful run of every command (nothing pending), "
        f"then {options.tenant_history} older copies of each run added in every tenant.",
        f"Processes: median of {runs} runs each, alternating, stdout to /dev/null, system "
        "checks included. Queries: one `call_command()` in a child process, every statement "
        "on every connection (django-tenants' `SET search_path` included), divided by the "
        f"number of tenants; {'the same' if constant else 'NOT the same'} at both history sizes.",
        f"One command pending in every tenant (`{PENDING}`): `run_pending_commands "
        f"--all-tenants` took {deploy['deploy']:.1f} s in process ({per_tenant * 1000:.1f} ms "
        f"per tenant, {deploy['queries'] / deploy['tenants']:.1f} queries per tenant), "
        f"{whole:.1f} s as a whole process; one tracked run of that command in a tenant "
        f"(`call_command()`, median of {TRACKED_RUNS - 1}) takes "
        f"{deploy['tracked_run'] * 1000:.1f} ms: the deploy costs "
        f"{per_tenant / deploy['tracked_run']:.2f} x a tracked run per tenant (target: 2 x or "
        f"less: {'met' if per_tenant <= 2 * deploy['tracked_run'] else 'MISSED'}).",
    ]
    return Table(
        f"Across tenants, postgresql ({tenants:,} tenants)",
        ["history rows per tenant", "process", "s (median)", "queries per tenant", "target"],
        rows,
        notes,
    )


def _within(label: str, seconds: float) -> str:
    if "--all-tenants" not in label:
        return ""
    return f"{TARGET_SECONDS} s: {'met' if seconds <= TARGET_SECONDS else 'MISSED'}"


if __name__ == "__main__":
    main()
