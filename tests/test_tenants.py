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

from tests.tenants.project import INSTALLATIONS, TENANTS, TenantProject, unavailable

pytestmark = pytest.mark.processes


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
    return [schema for name, schema, _ in lines if name == "tenant_once"]


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
        "the table 'managed_commands_commandexecution' does not exist in schema 'public' of "
        "database 'default'. Add 'managed_commands' to SHARED_APPS (one history for all "
        "tenants) or TENANT_APPS (one per tenant) and run 'python manage.py migrate_schemas'.\n"
    )
    assert ran(tenants) == list(TENANTS)


STATUS_SCRIPT = """
import json
import re
from managed_commands.tenants import statuses_by_tenant
print(json.dumps({t.schema: [t.scope, t.conditions()] for t in statuses_by_tenant()}))
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
        "Run them with 'python manage.py all_tenants_command --no-public run_pending_commands'.\n"
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
