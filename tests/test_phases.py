"""Phases, tags and ``RequireCommand`` in real ``manage.py`` processes: the deploy recipe
``run_pending_commands --phase pre_migrate && migrate && run_pending_commands``.

The commands live in ``tests.phasesapp``, installed through ``MC_TEST_EXTRA_APPS``:
``backfill_slugs`` (pre_migrate, tagged search, requires ``phasesapp.0001_initial``)
is required by the migration ``phasesapp.0002_require_backfill_slugs``;
``warm_cache`` (pre_migrate, tagged cache); ``reindex`` (post_migrate, tagged
search and slow, requires ``backfill_slugs``).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.processes import ProcessProject
from tests.test_show_managed_commands import FRESH

pytestmark = pytest.mark.processes

PHASES = {"MC_TEST_EXTRA_APPS": "tests.phasesapp"}
REQUIRED = "phasesapp.0002_require_backfill_slugs"
STOPPED = (
    "RequirementNotMet: A migration of 'phasesapp' requires the managed command "
    "'backfill_slugs', which has not run successfully yet, so migrate stopped. Run it first "
    "with 'python manage.py backfill_slugs' (or every pending pre_migrate command with "
    "'python manage.py run_pending_commands --phase pre_migrate'), then migrate again.\n"
)


def masked(text):
    return re.sub(r"\(\d+\.\d\d s\)", "(<s>)", text)


def succeeded(project):
    return [row["command_name"] for row in project.rows() if row["status"] == "succeeded"]


def applied(project, app):
    rows = project.sql("SELECT name FROM django_migrations WHERE app = ?", (app,))
    return sorted(name for (name,) in rows)


def run(project, *argv):
    result = project.run(*argv, env=PHASES)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def fresh(backend, tmp_path):
    """An empty database, migrated by the test itself."""
    project = ProcessProject(backend, tmp_path).create(migrate=False)
    yield project
    project.drop()


@pytest.fixture(scope="module")
def phases_project(backend, tmp_path_factory):
    """Every migration applied; ``migrate --fake`` skipped the RequireCommand one."""
    project = ProcessProject(backend, tmp_path_factory.mktemp(f"phases-{backend}")).create(
        migrate=False
    )
    run(project, "migrate", "phasesapp", "0001_initial", "-v0")
    run(project, "migrate", "--fake", "phasesapp", "0002", "-v0")
    run(project, "migrate", "-v0")
    yield project
    project.drop()


@pytest.fixture
def deployed(phases_project):
    phases_project.reset()
    return phases_project


def test_migrate_stops_naming_the_required_command_until_it_ran(fresh):
    run(fresh, "migrate", "managed_commands", "-v0")
    refused = fresh.run("backfill_slugs", env=PHASES)
    assert (refused.returncode, refused.stderr) == (
        1,
        "RequirementNotMet: Cannot run 'backfill_slugs': it requires the migration "
        "'phasesapp.0001_initial', not applied on database 'default'. "
        "Run 'python manage.py migrate' first.\n",
    )
    stopped = fresh.run("migrate", "-v0", env=PHASES)
    assert (stopped.returncode, stopped.stderr) == (1, STOPPED)
    assert applied(fresh, "phasesapp") == ["0001_initial"]
    run(fresh, "backfill_slugs")
    run(fresh, "migrate", "-v0")
    assert applied(fresh, "phasesapp") == ["0001_initial", "0002_require_backfill_slugs"]
    assert fresh.effect_lines()[0].startswith("backfill_slugs ")


def test_the_deploy_recipe_runs_pre_migrate_commands_migrates_then_runs_the_rest(fresh):
    # A first deploy creates the history table before anything can be recorded in it.
    too_soon = fresh.run("run_pending_commands", "--phase", "pre_migrate", env=PHASES)
    assert (too_soon.returncode, too_soon.stderr) == (
        4,
        "TrackingUnavailable: The command was not run: its run cannot be recorded because the "
        "table 'managed_commands_commandexecution' does not exist in database 'default'. "
        "Run 'python manage.py migrate managed_commands' first.\n",
    )
    run(fresh, "migrate", "managed_commands", "-v0")
    run(fresh, "migrate", "phasesapp", "0001_initial", "-v0")
    before = run(fresh, "run_pending_commands", "--phase", "pre_migrate")
    assert masked(before) == (
        "Running 2 pending commands in phase pre_migrate: backfill_slugs, warm_cache\n"
        "  Running backfill_slugs...\n"
        "  backfill_slugs: OK (<s>)\n"
        "  Running warm_cache...\n"
        "  warm_cache: OK (<s>)\n"
    )
    run(fresh, "migrate", "-v0")
    after = run(fresh, "run_pending_commands")
    assert after.startswith(
        "Running 5 pending commands: noop_once, needs_schema, once, needs_once, reindex\n"
    )
    assert succeeded(fresh) == [
        "backfill_slugs",
        "warm_cache",
        "noop_once",
        "needs_schema",
        "once",
        "needs_once",
        "reindex",
    ]


def test_migrate_fake_skips_require_command(deployed):
    assert applied(deployed, "phasesapp") == ["0001_initial", "0002_require_backfill_slugs"]
    assert deployed.rows() == []


def test_phase_runs_only_that_phases_pending_commands(deployed):
    run(deployed, "run_pending_commands", "--phase", "pre_migrate")
    assert succeeded(deployed) == ["backfill_slugs", "warm_cache"]
    again = run(deployed, "run_pending_commands", "--phase", "pre_migrate")
    assert again == "No pending run_once commands in phase pre_migrate.\n"
    plan = run(deployed, "run_pending_commands", "--phase", "post_migrate", "--plan")
    assert (
        plan.splitlines()[0] == "Would run 5 pending commands in phase post_migrate, in this order:"
    )
    assert plan.splitlines()[-1] == "  5. reindex  (requires backfill_slugs)"


def test_tags_select_the_commands_carrying_any_of_them(deployed):
    assert run(deployed, "run_pending_commands", "--tag", "search", "--plan") == (
        "Would run 2 pending commands tagged search, in this order:\n"
        "  1. backfill_slugs  (requires phasesapp.0001_initial)\n"
        "  2. reindex  (requires backfill_slugs)\n"
    )
    assert run(deployed, "run_pending_commands", "--tag", "slow", "--tag", "cache", "--plan") == (
        "Would run 2 pending commands tagged cache or slow, in this order:\n"
        "  1. reindex  (requires backfill_slugs)\n"
        "  2. warm_cache\n"
    )
    run(deployed, "run_pending_commands", "--tag", "search")
    assert succeeded(deployed) == ["backfill_slugs", "reindex"]


def test_fake_with_a_phase_records_only_that_phase(deployed):
    assert run(deployed, "run_pending_commands", "--phase", "pre_migrate", "--fake") == (
        "  Faked backfill_slugs\n"
        "  Faked warm_cache\n"
        "Faked 2 commands in phase pre_migrate: recorded as done, not run.\n"
    )
    assert [row["command_name"] for row in deployed.rows()] == ["backfill_slugs", "warm_cache"]
    assert run(deployed, "run_pending_commands", "--phase", "pre_migrate", "--fake", "reindex") == (
        "Skipped 'reindex': it is not in phase pre_migrate.\n"
        "No pending run_once commands in phase pre_migrate.\n"
    )


PHASES_LINES = """\
phasesapp
 [ ] backfill_slugs  phase pre_migrate; tags search; requires phasesapp.0001_initial; never run
 [ ] reindex         tags search, slow; requires backfill_slugs; never run
 [ ] warm_cache      phase pre_migrate; tags cache; never run
"""


def test_the_listing_shows_phase_and_tags_and_the_rest_as_before(deployed):
    assert run(deployed, "show_managed_commands") == PHASES_LINES + FRESH
    assert run(deployed, "show_managed_commands", "--phase", "pre_migrate") == (
        "phasesapp\n"
        " [ ] backfill_slugs  phase pre_migrate; tags search; "
        "requires phasesapp.0001_initial; never run\n"
        " [ ] warm_cache      phase pre_migrate; tags cache; never run\n"
    )
    assert run(deployed, "show_managed_commands", "--tag", "nothing") == "No managed commands.\n"


def test_the_json_listing_filters_and_carries_phase_and_tags(deployed):
    run(deployed, "backfill_slugs")
    listed = json.loads(
        run(deployed, "show_managed_commands", "--json", "--pending", "--tag", "search")
    )
    assert [(e["name"], e["phase"], e["tags"]) for e in listed] == [
        ("reindex", "post_migrate", ["search", "slow"])
    ]
    every = json.loads(run(deployed, "show_managed_commands", "--json", "--tag", "search"))
    assert [(e["name"], e["phase"], e["tags"]) for e in every] == [
        ("backfill_slugs", "pre_migrate", ["search"]),
        ("reindex", "post_migrate", ["search", "slow"]),
    ]


def test_check_gates_on_the_selected_commands_only(deployed):
    result = deployed.run("show_managed_commands", "--check", "--phase", "pre_migrate", env=PHASES)
    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: 2 run_once commands are pending in phase pre_migrate: backfill_slugs, "
        "warm_cache. Run them with 'python manage.py run_pending_commands --phase pre_migrate'.\n"
    )
    run(deployed, "run_pending_commands", "--phase", "pre_migrate")
    passed = deployed.run(
        "show_managed_commands", "--check", "--pending", "--phase", "pre_migrate", env=PHASES
    )
    assert (passed.returncode, passed.stdout) == (0, "No pending run_once commands.\n")


@pytest.mark.parametrize("whole", ["--graph", "--all-tenants"])
def test_the_graph_and_the_tenant_matrix_cannot_be_filtered(deployed, whole):
    result = deployed.run("show_managed_commands", whole, "--tag", "search", env=PHASES)
    assert (result.returncode, result.stderr) == (
        1,
        f"CommandError: --tag selects lines of the list; leave out {whole}.\n",
    )
