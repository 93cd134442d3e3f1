"""django-tenants: run_once, requires and locks per tenant, in real processes on PostgreSQL.

Each test runs with ``managed_commands`` in SHARED_APPS (one history table in
the public schema), in TENANT_APPS (one table per tenant schema), and in
SHARED_APPS with the history on another alias (``tests.tenants.settings_alias``).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.processes import TABLE
from tests.tenants.project import INSTALLATIONS, TENANTS, TenantProject, unavailable

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]


@pytest.fixture(scope="session", params=INSTALLATIONS)
def installation(request):
    return request.param


@pytest.fixture(scope="session")
def migrated_tenants(installation, tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    project = TenantProject(installation, tmp_path_factory.mktemp(f"tenants-{installation}"))
    yield project.create()
    project.drop()


@pytest.fixture
def tenants(migrated_tenants):
    """The django-tenants project with three tenants, its history emptied."""
    migrated_tenants.reset()
    return migrated_tenants


def ran(tenants):
    """The schemas in which tenant_once's body ran, in order."""
    lines = [line.split() for line in tenants.effect_lines()]
    return [words[1] for words in lines if words[0] == "tenant_once"]


def statuses(tenants, schema):
    return [row["status"] for row in tenants.rows("tenant_once", schema=schema)]


def test_all_tenants_command_runs_a_run_once_command_once_per_tenant(tenants):
    first = tenants.run("all_tenants_command", "--no-public", "tenant_once")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "".join(
        f"Applying command to: {schema}\ntenant_once: done in {schema}\n" for schema in TENANTS
    )
    for schema in TENANTS:
        assert statuses(tenants, schema) == ["succeeded"]

    again = tenants.run("all_tenants_command", "--no-public", "tenant_once")
    assert again.returncode == 0, again.stderr
    for schema in TENANTS:
        assert f"Applying command to: {schema}\nSkipped 'tenant_once': " in again.stdout
    assert again.stdout.count("this run_once command already ran successfully") == 3
    one = tenants.run("tenant_command", "tenant_once", "--schema=acme")
    assert one.returncode == 0 and one.stdout.startswith("Skipped 'tenant_once'")
    assert ran(tenants) == list(TENANTS)
    for schema in TENANTS:
        assert statuses(tenants, schema) == ["succeeded"]


def test_done_in_one_tenant_is_still_pending_in_the_others(tenants):
    result = tenants.run("tenant_command", "tenant_once", "--schema=acme")
    assert (result.returncode, result.stdout) == (0, "tenant_once: done in acme\n")
    assert statuses(tenants, "acme") == ["succeeded"]
    assert statuses(tenants, "globex") == []
    # requires is per tenant too: met in acme, not in globex.
    refused = tenants.run("tenant_command", "after_tenant_once", "--schema=globex")
    assert refused.returncode == 1
    assert "Cannot run 'after_tenant_once': it requires 'tenant_once'" in refused.stderr
    accepted = tenants.run("tenant_command", "after_tenant_once", "--schema=acme")
    assert (accepted.returncode, accepted.stdout) == (0, "after_tenant_once: done in acme\n")
    second = tenants.run("tenant_command", "tenant_once", "--schema=globex")
    assert (second.returncode, second.stdout) == (0, "tenant_once: done in globex\n")
    assert ran(tenants) == ["acme", "globex"]


def test_a_failure_in_one_tenant_leaves_the_others_done(tenants):
    failing = tenants.run(
        "all_tenants_command", "--no-public", "tenant_once", env={"MC_TEST_FAIL_SCHEMA": "globex"}
    )
    # django-tenants stops at the first tenant that fails.
    assert failing.returncode == 1
    assert failing.stderr.rstrip().endswith("RuntimeError: tenant_once failed on purpose in globex")
    assert statuses(tenants, "acme") == ["succeeded"]
    assert statuses(tenants, "globex") == ["failed"]
    assert statuses(tenants, "initech") == []

    fixed = tenants.run("all_tenants_command", "--no-public", "tenant_once")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("Applying command to: acme\nSkipped 'tenant_once'")
    assert fixed.stdout.endswith(
        "Applying command to: globex\ntenant_once: done in globex\n"
        "Applying command to: initech\ntenant_once: done in initech\n"
    )
    assert ran(tenants) == ["acme", "globex", "globex", "initech"]
    assert statuses(tenants, "acme") == ["succeeded"]
    assert statuses(tenants, "globex") == ["failed", "succeeded"]
    assert statuses(tenants, "initech") == ["succeeded"]


def test_runs_for_two_tenants_do_not_block_each_other(tenants):
    holder = tenants.spawn("tenant_command", "tenant_once", "--seconds", "60", "--schema=acme")
    tenants.wait_until_started(holder)
    try:
        # Were globex waiting for acme's lock, it would give up after 5 s with exit code 3.
        other = tenants.run(
            "tenant_command", "tenant_once", "--schema=globex", env={"MC_TEST_WAIT_TIMEOUT": "5"}
        )
        same = tenants.run(
            "tenant_command", "tenant_once", "--schema=acme", env={"MC_TEST_WAIT_TIMEOUT": "1"}
        )
        assert holder.poll() is None
    finally:
        holder.terminate()
        holder.communicate(timeout=60)
    assert (other.returncode, other.stdout) == (0, "tenant_once: done in globex\n"), other.stderr
    assert same.returncode == 3 and f"process {holder.pid} on " in same.stderr
    assert statuses(tenants, "globex") == ["succeeded"]
    assert statuses(tenants, "acme") == ["interrupted"]


def test_heartbeats_update_the_tenants_own_row(tenants):
    # A lease of 0.4 s makes the heartbeat beat every 0.1 s.
    holder = tenants.spawn(
        "tenant_command",
        "tenant_once",
        "--seconds",
        "60",
        "--schema=initech",
        env={"MC_TEST_LEASE": "0.4"},
    )
    tenants.wait_until_started(holder)
    query = f"SELECT heartbeat_at FROM {tenants.table('initech')} WHERE scope = 'initech'"
    try:
        deadline = time.monotonic() + 30
        while tenants.sql(query) != [] and tenants.sql(query)[0][0] is None:
            assert time.monotonic() < deadline, "no heartbeat reached the tenant's row"
            time.sleep(0.05)
    finally:
        holder.terminate()
        holder.communicate(timeout=60)
    assert tenants.sql(query)[0][0] is not None


@pytest.mark.parametrize("installation", ["shared", "alias"], indirect=True, scope="session")
def test_shared_installation_keeps_every_tenant_in_the_public_table(tenants):
    result = tenants.run("all_tenants_command", "tenant_once")
    assert result.returncode == 0, result.stderr
    scopes = tenants.sql(
        "SELECT scope FROM public.managed_commands_commandexecution ORDER BY scope"
    )
    assert [scope for (scope,) in scopes] == ["", "acme", "globex", "initech"]
    assert ran(tenants) == ["acme", "globex", "initech", "public"]
    tables = tenants.sql(
        "SELECT table_schema FROM information_schema.tables "
        "WHERE table_name = 'managed_commands_commandexecution'"
    )
    assert tables == [("public",)]


@pytest.mark.parametrize("installation", ["tenant"], indirect=True, scope="session")
def test_tenant_installation_keeps_a_table_per_tenant(tenants):
    result = tenants.run("all_tenants_command", "--no-public", "tenant_once")
    assert result.returncode == 0, result.stderr
    for schema in TENANTS:
        [(scope,)] = tenants.sql(f"SELECT scope FROM {tenants.table(schema)}")
        assert scope == schema
    tables = tenants.sql(
        "SELECT table_schema FROM information_schema.tables "
        "WHERE table_name = 'managed_commands_commandexecution' ORDER BY table_schema"
    )
    assert tables == [(schema,) for schema in TENANTS]
    # The public schema has no history: a run there is refused, not run untracked.
    public = tenants.run("tenant_once")
    assert public.returncode == 4
    assert public.stderr == (
        "TrackingUnavailable: The command was not run: its run cannot be recorded because "
        f"the table 'managed_commands_commandexecution' does not exist in schema 'public' of "
        f"database 'default'. {TENANT_APPS_ADVICE}\n"
    )
    assert ran(tenants) == list(TENANTS)


TENANT_APPS_ADVICE = (
    "'managed_commands' is in TENANT_APPS only, so the history lives in each tenant's schema: "
    "deploy every tenant with 'python manage.py run_pending_commands --all-tenants', or run a "
    "command in each with 'python manage.py all_tenants_command --no-public <command>'."
)


STATUS_SCRIPT = """
import json
import re
from managed_commands.tenants import statuses_by_tenant
print(json.dumps({t.schema: [t.scope, t.shown_states()] for t in statuses_by_tenant()}))
"""


def test_statuses_by_tenant_gives_the_matrix(tenants):
    assert tenants.run("tenant_command", "tenant_once", "--schema=acme").returncode == 0
    assert tenants.run("tenant_command", "after_tenant_once", "--schema=acme").returncode == 0
    failing = tenants.run(
        "tenant_command", "tenant_once", "--schema=globex", env={"MC_TEST_FAIL_SCHEMA": "globex"}
    )
    assert failing.returncode == 1
    result = tenants.run("shell", "-v0", "-c", STATUS_SCRIPT)
    assert result.returncode == 0, result.stderr
    matrix = json.loads(result.stdout)
    assert list(matrix) == list(TENANTS)
    assert {schema: scope for schema, (scope, _) in matrix.items()} == {s: s for s in TENANTS}
    picked = {
        schema: {name: states[name] for name in ("tenant_once", "after_tenant_once", "slow")}
        for schema, (_, states) in matrix.items()
    }
    assert picked == {
        "acme": {"tenant_once": "done", "after_tenant_once": "done", "slow": "repeatable"},
        "globex": {"tenant_once": "failed", "after_tenant_once": "pending", "slow": "repeatable"},
        "initech": {"tenant_once": "pending", "after_tenant_once": "pending", "slow": "repeatable"},
    }


# -- across tenants: run_pending_commands under all_tenants_command, the matrix ----

PLAN = ["tenant_once", "after_tenant_once", "noop_once", "needs_schema", "once", "needs_once"]
PRINTS = {
    "tenant_once": "tenant_once: done in {schema}\n",
    "after_tenant_once": "after_tenant_once: done in {schema}\n",
    "needs_schema": "needs_schema: done\n",
    "once": "once: done\n",
    "needs_once": "needs_once: done\n",
}


def matrix(tenant_once, after, others):
    """``show_managed_commands --all-tenants`` with these cells (one word per tenant)."""
    row = "".join(f"{word:<9}" for word in others).rstrip()
    return (
        "                    acme     globex   initech\n"
        "tenants\n"
        f" after_tenant_once  {''.join(f'{w:<9}' for w in after).rstrip()}\n"
        f" tenant_once        {''.join(f'{w:<9}' for w in tenant_once).rstrip()}\n"
        "testapp\n"
        " concurrent         -        -        -\n"
        " exit_with          -        -        -\n"
        " fail               -        -        -\n"
        " leaky              -        -        -\n"
        " needs_auth         -        -        -\n"
        f" needs_once         {row}\n"
        f" needs_schema       {row}\n"
        " noisy              -        -        -\n"
        " noop_managed       -        -        -\n"
        f" noop_once          {row}\n"
        f" once               {row}\n"
        " slow               -        -        -\n"
        " talk               -        -        -\n"
        " with_options       -        -        -\n"
    )


def masked(text):
    return re.sub(r"\(\d+\.\d\d s\)", "(<s>)", text)


def pending_run(schema):
    """What run_pending_commands prints in a tenant where everything is pending."""
    steps = "".join(
        f"  Running {name}...\n{PRINTS.get(name, '').format(schema=schema)}  {name}: OK (<s>)\n"
        for name in PLAN
    )
    return (
        f"Applying command to: {schema}\n"
        f"Running 6 pending commands in scope '{schema}': {', '.join(PLAN)}\n{steps}"
    )


def test_run_pending_commands_runs_the_chain_in_every_tenant_then_nothing(tenants):
    fresh = tenants.run("show_managed_commands", "--all-tenants")
    assert (fresh.returncode, fresh.stderr) == (0, "")
    assert fresh.stdout == matrix(["pending"] * 3, ["pending"] * 3, ["pending"] * 3)

    first = tenants.run("all_tenants_command", "--no-public", "run_pending_commands")
    assert (first.returncode, first.stderr) == (0, "")
    assert masked(first.stdout) == "".join(pending_run(schema) for schema in TENANTS)
    chain = [line.split()[:2] for line in tenants.effect_lines() if "tenant_once" in line]
    assert chain == [
        [name, schema] for schema in TENANTS for name in ("tenant_once", "after_tenant_once")
    ]

    again = tenants.run("all_tenants_command", "--no-public", "run_pending_commands")
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == "".join(
        f"Applying command to: {schema}\nNo pending run_once commands in scope '{schema}'.\n"
        for schema in TENANTS
    )
    for schema in TENANTS:
        assert statuses(tenants, schema) == ["succeeded"]

    done = tenants.run("show_managed_commands", "--all-tenants", "--check")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == matrix(["done"] * 3, ["done"] * 3, ["done"] * 3)
    pending = tenants.run("show_managed_commands", "--all-tenants", "--pending")
    assert (pending.returncode, pending.stdout) == (0, "No pending run_once commands.\n")


def test_the_matrix_shows_failed_in_the_tenant_that_failed_and_done_elsewhere(tenants):
    failing = tenants.run(
        "all_tenants_command",
        "--no-public",
        "run_pending_commands",
        env={"MC_TEST_FAIL_SCHEMA": "initech"},
    )
    assert failing.returncode == 1
    assert masked(failing.stdout) == (
        pending_run("acme") + pending_run("globex") + "Applying command to: initech\n"
        f"Running 6 pending commands in scope 'initech': {', '.join(PLAN)}\n"
        "  Running tenant_once...\n"
    )
    assert failing.stderr.endswith(
        "RuntimeError: tenant_once failed on purpose in initech\n"
        "PendingCommandFailed: 'tenant_once' failed, so run_pending_commands stopped. "
        f"Still pending: {', '.join(PLAN)}. Fix the failure, then run it again.\n"
    )

    result = tenants.run("show_managed_commands", "--all-tenants")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == matrix(
        ["done", "done", "failed"], ["done", "done", "pending"], ["done", "done", "pending"]
    )

    check = tenants.run("show_managed_commands", "--all-tenants", "--pending", "--check")
    assert check.returncode == 1
    assert check.stdout == (
        "                    acme     globex   initech\n"
        "tenants\n"
        " after_tenant_once  done     done     pending\n"
        " tenant_once        done     done     failed\n"
        "testapp\n"
        " needs_once         done     done     pending\n"
        " needs_schema       done     done     pending\n"
        " noop_once          done     done     pending\n"
        " once               done     done     pending\n"
    )
    assert check.stderr == (
        "CommandError: 6 run_once commands are pending in 1 of 3 tenants (initech: "
        "after_tenant_once, tenant_once, needs_once, needs_schema, noop_once, once). "
        "Run them with 'python manage.py run_pending_commands --all-tenants'.\n"
    )


def test_the_matrix_as_json(tenants):
    assert tenants.run("tenant_command", "tenant_once", "--schema=globex").returncode == 0
    result = tenants.run("show_managed_commands", "--all-tenants", "--json", "--pending")
    assert (result.returncode, result.stderr) == (0, "")
    listed = json.loads(result.stdout)
    assert [entry["name"] for entry in listed] == [
        "after_tenant_once",
        "tenant_once",
        "needs_once",
        "needs_schema",
        "noop_once",
        "once",
    ]
    assert listed[:2] == [
        {
            "name": "after_tenant_once",
            "app_label": "tenants",
            "run_once": True,
            "requires": ["tenant_once"],
            "tenants": {"acme": "pending", "globex": "pending", "initech": "pending"},
        },
        {
            "name": "tenant_once",
            "app_label": "tenants",
            "run_once": True,
            "requires": [],
            "tenants": {"acme": "pending", "globex": "done", "initech": "pending"},
        },
    ]
    every = json.loads(tenants.run("show_managed_commands", "--all-tenants", "--json").stdout)
    slow = next(entry for entry in every if entry["name"] == "slow")
    assert slow["tenants"] == {schema: "repeatable" for schema in TENANTS}


def test_all_tenants_cannot_draw_the_graph(tenants):
    result = tenants.run("show_managed_commands", "--all-tenants", "--graph")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "CommandError: --graph shows one scope; leave out --all-tenants.\n"


# -- the operating commands where the history table is absent ------------------

READING = (
    "TrackingUnavailable: The history cannot be read because the table "
    "'managed_commands_commandexecution' does not exist in schema '{schema}' of database "
    "'default'. "
)
RUNNING = (
    "TrackingUnavailable: The command was not run: its run cannot be recorded because the "
    "table 'managed_commands_commandexecution' does not exist in schema '{schema}' of "
    "database 'default'. "
)


@pytest.mark.parametrize("installation", ["tenant"], indirect=True, scope="session")
def test_operating_commands_in_the_public_schema_point_to_the_tenants(tenants):
    for argv, refusal in (
        (["show_managed_commands"], READING),
        (["show_managed_commands", "--pending", "--check"], READING),
        (["run_pending_commands"], RUNNING),
        (["run_pending_commands", "--plan"], RUNNING),
    ):
        result = tenants.run(*argv)
        expected = refusal.format(schema="public") + TENANT_APPS_ADVICE + "\n"
        assert (result.returncode, result.stdout, result.stderr) == (4, "", expected), argv
    # all_tenants_command visits public too: it stops there with the same advice.
    wrapped = tenants.run("all_tenants_command", "run_pending_commands")
    assert wrapped.returncode == 4
    assert wrapped.stdout.endswith("Applying command to: public\n")
    assert wrapped.stderr == RUNNING.format(schema="public") + TENANT_APPS_ADVICE + "\n"


@pytest.mark.parametrize("installation", ["shared"], indirect=True, scope="session")
def test_operating_commands_without_the_shared_table_say_to_migrate_the_shared_schema(tenants):
    tenants.sql(f"ALTER TABLE public.{TABLE} RENAME TO mc_hidden_history")
    try:
        shown = tenants.run("show_managed_commands")
        across = tenants.run("show_managed_commands", "--all-tenants")
        deployed = tenants.run("run_pending_commands", "--all-tenants")
    finally:
        tenants.sql(f"ALTER TABLE public.mc_hidden_history RENAME TO {TABLE}")
    advice = "Run 'python manage.py migrate_schemas --shared' first.\n"
    assert (shown.returncode, shown.stderr) == (4, READING.format(schema="public") + advice)
    assert (across.returncode, across.stderr) == (4, READING.format(schema="acme") + advice)
    # Across tenants, each tenant fails in turn: the first one stops the deploy.
    assert deployed.returncode == 1
    assert deployed.stderr.startswith(
        "Tenant 'public': TrackingUnavailable: The command was not run: its run cannot be "
        "recorded because the table 'managed_commands_commandexecution' does not exist in "
        f"schema 'public' of database 'default'. {advice}"
    )
    assert "Traceback" not in shown.stderr + across.stderr + deployed.stderr


# -- run_pending_commands --all-tenants ------------------------------------------


def targets(tenants):
    """The schemas --all-tenants deploys: public too where it holds a history of its own."""
    return TENANTS if tenants.installation == "tenant" else ("public", *TENANTS)


def deployed(schema):
    """What --all-tenants prints for a tenant where the whole chain is pending."""
    steps = "".join(
        f"  Running {name}...\n{PRINTS.get(name, '').format(schema=schema)}  {name}: OK (<s>)\n"
        for name in PLAN
    )
    return f"Running 6 pending commands in tenant '{schema}': {', '.join(PLAN)}\n{steps}"


def summary(outcomes):
    width = max(len(schema) for schema in outcomes)
    lines = "".join(f"  {schema:<{width}}  {outcome}\n" for schema, outcome in outcomes.items())
    return f"Summary across {len(outcomes)} tenants:\n{lines}"


def test_run_pending_commands_all_tenants_deploys_every_tenant_with_one_summary(tenants):
    schemas = targets(tenants)
    first = tenants.run("run_pending_commands", "--all-tenants")
    assert (first.returncode, first.stderr) == (0, "")
    assert masked(first.stdout) == "".join(deployed(schema) for schema in schemas) + summary(
        dict.fromkeys(schemas, "ran 6")
    )
    assert ran(tenants) == list(schemas)
    for schema in schemas:
        assert statuses(tenants, schema) == ["succeeded"]

    again = tenants.run("run_pending_commands", "--all-tenants")
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == summary(dict.fromkeys(schemas, "nothing pending"))
    assert ran(tenants) == list(schemas)


def test_all_tenants_stops_at_a_failing_tenant_unless_told_to_keep_going(tenants):
    schemas = targets(tenants)
    before = schemas[: schemas.index("globex")]
    failing = {"MC_TEST_FAIL_SCHEMA": "globex"}
    still_pending = (
        "Tenant 'globex': PendingCommandFailed: 'tenant_once' failed, so run_pending_commands "
        f"stopped. Still pending: {', '.join(PLAN)}. Fix the failure, then run it again.\n"
    )

    stopped = tenants.run("run_pending_commands", "--all-tenants", env=failing)
    assert stopped.returncode == 1
    assert masked(stopped.stdout) == (
        "".join(deployed(schema) for schema in before)
        + f"Running 6 pending commands in tenant 'globex': {', '.join(PLAN)}\n"
        "  Running tenant_once...\n"
        + summary(
            {**dict.fromkeys(before, "ran 6"), "globex": "FAILED at tenant_once"}
            | {"initech": "not reached"}
        )
    )
    assert stopped.stderr.endswith(
        "RuntimeError: tenant_once failed on purpose in globex\n"
        + still_pending
        + f"PendingCommandFailed: run_pending_commands failed in 1 of {len(schemas)} tenants: "
        "globex. It stopped there, 1 tenant not reached; --keep-going carries on past a "
        "failing tenant. Fix the failure, then run it again.\n"
    )
    assert statuses(tenants, "initech") == []

    kept = tenants.run("run_pending_commands", "--all-tenants", "--keep-going", env=failing)
    assert kept.returncode == 1
    assert masked(kept.stdout).endswith(
        deployed("initech")
        + summary(
            {**dict.fromkeys(before, "nothing pending"), "globex": "FAILED at tenant_once"}
            | {"initech": "ran 6"}
        )
    )
    assert kept.stderr.endswith(
        still_pending + f"PendingCommandFailed: run_pending_commands failed in 1 of "
        f"{len(schemas)} tenants: globex. Fix the failure, then run it again.\n"
    )
    assert statuses(tenants, "globex") == ["failed", "failed"]
    assert statuses(tenants, "initech") == ["succeeded"]


def test_all_tenants_plans_selects_and_refuses_what_makes_no_sense(tenants):
    assert tenants.run("tenant_command", "run_pending_commands", "--schema=acme").returncode == 0
    schemas = targets(tenants)
    planned = tenants.run("run_pending_commands", "--all-tenants", "--plan")
    assert (planned.returncode, planned.stderr) == (0, "")
    others = [schema for schema in schemas if schema != "acme"]
    assert planned.stdout.count("Would run 6 pending commands in tenant ") == len(others)
    assert planned.stdout.endswith(
        summary(
            {schema: "nothing pending" if schema == "acme" else "would run 6" for schema in schemas}
        )
    )
    tagged = tenants.run("run_pending_commands", "--all-tenants", "--tag", "nothing-has-it")
    assert (tagged.returncode, tagged.stdout) == (
        0,
        summary(dict.fromkeys(schemas, "nothing pending")),
    )
    assert ran(tenants) == ["acme"]

    alone = tenants.run("run_pending_commands", "--keep-going")
    assert (alone.returncode, alone.stderr) == (
        1,
        "CommandError: --keep-going carries on past a failing tenant; add --all-tenants.\n",
    )
    nested = tenants.run("tenant_command", "run_pending_commands", "--all-tenants", "--schema=acme")
    assert (nested.returncode, nested.stdout) == (1, "")
    assert nested.stderr == (
        "CommandError: --all-tenants deploys every tenant, but tenant 'acme' is selected: run "
        "'python manage.py run_pending_commands --all-tenants' on its own, not under "
        "all_tenants_command or tenant_command.\n"
    )


# -- the notice after migrate_schemas ----------------------------------------------


def notices(result):
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if "run_once" in line or "Deploy" in line]


def test_migrate_schemas_says_once_what_is_pending_across_the_tenants(tenants):
    assert tenants.run("tenant_command", "run_pending_commands", "--schema=acme").returncode == 0
    waiting = [schema for schema in targets(tenants) if schema != "acme"]
    assert notices(tenants.run("migrate_schemas")) == [
        f"[standard:public] Pending run_once commands in {len(waiting)} of {len(waiting) + 1} "
        f"tenants ({', '.join(waiting)}): {', '.join(PLAN)}",
        "[standard:public]   Deploy them all with: python manage.py run_pending_commands "
        "--all-tenants",
    ]
    assert tenants.run("run_pending_commands", "--all-tenants").returncode == 0
    assert notices(tenants.run("migrate_schemas")) == []


# -- the cost of a tenant does not grow with its history --------------------------

QUERIES_SCRIPT = """
import os
from contextlib import ExitStack
from django.core.management import call_command
from django.db import connections
from django.test.utils import CaptureQueriesContext
with ExitStack() as stack:
    captured = [stack.enter_context(CaptureQueriesContext(c)) for c in connections.all()]
    call_command("run_pending_commands", "--all-tenants", stdout=open(os.devnull, "w"))
print(sum(len(c.captured_queries) for c in captured))
"""


def test_all_tenants_reads_each_tenant_in_queries_independent_of_its_history(tenants):
    assert tenants.run("run_pending_commands", "--all-tenants").returncode == 0

    def queries():
        result = tenants.run("shell", "-v0", "-c", QUERIES_SCRIPT)
        assert result.returncode == 0, result.stderr
        return int(result.stdout)

    short = queries()
    for schema in targets(tenants):
        tenants.pad_history(schema, copies=200)
    assert len(tenants.rows("tenant_once", schema="initech")) == 201
    assert queries() == short


# -- recurring commands: late per tenant (#26) ---------------------------------------

CADENCE = {"MC_TEST_EXTRA_APPS": "tests.cadenceapp", "MC_TEST_ALERTS_TO_STDERR": "1"}
LATE_TENANTS = ("acme", "initech")

HTTP_SCRIPT = """
import json
from django.conf import settings
from django.test import Client, override_settings
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
health = client.get("/ht/?format=json")
token = {**settings.MANAGED_COMMANDS, "HEALTH_TOKEN": "a-long-random-health-token"}
with override_settings(MANAGED_COMMANDS=token):
    view = client.get("/mc/cadence/", headers={"Authorization": f"Bearer {token['HEALTH_TOKEN']}"})
print(json.dumps([health.status_code, health.json(), view.status_code, view.json()]))
"""


def late_in(tenants, *schemas):
    """Make the runs of ``hourly`` in ``schemas`` two hours old (expected every hour)."""
    for schema in schemas:
        tenants.sql(
            f"UPDATE {tenants.table(schema)} SET executed_at = now() - interval '2 hours', "
            "finished_at = now() - interval '2 hours' WHERE command_name = 'hourly' AND scope = %s",
            (schema,),
        )


def http(tenants):
    result = tenants.run("shell", "-v0", "-c", HTTP_SCRIPT, env=CADENCE)
    assert result.returncode == 0, result.stderr
    return result.stderr, json.loads(result.stdout)


def gate(tenants):
    return tenants.run("show_managed_commands", "--all-tenants", "--check-cadence", env=CADENCE)


def late_lines(*schemas):
    return [
        rf"hourly \[{schema}\]: late since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d" for schema in schemas
    ]


def test_a_recurring_command_is_late_per_tenant(tenants):
    for schema in TENANTS:
        ran_hourly = tenants.run("tenant_command", "hourly", f"--schema={schema}", env=CADENCE)
        assert ran_hourly.returncode == 0, ran_hourly.stderr
    assert (gate(tenants).returncode, gate(tenants).stderr) == (0, "")
    late_in(tenants, *LATE_TENANTS)  # on time in globex

    # django-health-check's view and the JSON view, over HTTP, name the late tenants.
    logged, (health_code, health, view_code, view) = http(tenants)
    (text,) = health.values()
    assert health_code == 500 and re.fullmatch(
        "Unavailable: 2 recurring commands: " + "; ".join(late_lines(*LATE_TENANTS)), text
    )
    assert view_code == 503 and view["ok"] is False
    assert [(a["name"], a["tenant"], a["alarms"]) for a in view["alarms"]] == [
        ("hourly", schema, ["late"]) for schema in LATE_TENANTS
    ]
    # Each tenant's late spell is logged once, recorded in that tenant's cadence row.
    for schema in LATE_TENANTS:
        assert logged.count(f"'hourly' [{schema}] is late: late since ") == 1, logged
    assert "globex" not in logged and "Could not record" not in logged

    failing = gate(tenants)
    assert failing.returncode == 1
    assert " hourly             late     -        late\n" in failing.stdout
    assert re.fullmatch(
        "\n".join([*late_lines(*LATE_TENANTS), ""])
        + "CommandError: 2 recurring commands are late, failing or overrunning.\n",
        failing.stderr,
    ), failing.stderr  # already logged: no second alert

    # A success in acme ends its spell there; initech is still late.
    assert tenants.run("tenant_command", "hourly", "--schema=acme", env=CADENCE).returncode == 0
    still = gate(tenants)
    assert still.returncode == 1 and re.match(late_lines("initech")[0] + "\n", still.stderr)
    assert " hourly             -        -        late\n" in still.stdout
