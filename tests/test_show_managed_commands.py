"""``manage.py show_managed_commands`` as a user runs it."""

from __future__ import annotations

import json
import re

import pytest

from tests.processes import BATCHES, TABLE

pytestmark = pytest.mark.processes

FRESH = """\
testapp
 [-] concurrent    never run
 [-] exit_with     never run
 [-] fail          never run
 [-] leaky         never run
 [-] needs_auth    requires auth.0001_initial; never run
 [ ] needs_once    requires once, noop_once; never run
 [ ] needs_schema  requires noop_once, managed_commands.0001_initial; never run
 [-] noisy         never run
 [-] noop_managed  never run
 [ ] noop_once     never run
 [ ] once          never run
 [-] slow          never run
 [-] talk          never run
 [-] with_options  never run
"""


def masked(text):
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<when>", text)
    return re.sub(r"\(\d+\.\d\d s\)", "(<s>)", text)


def test_lists_every_managed_command_by_app(project):
    result = project.run("show_managed_commands")
    assert (result.returncode, result.stdout, result.stderr) == (0, FRESH, "")


def test_marks_done_failed_and_running_with_last_run(project):
    assert project.run("noop_once").returncode == 0
    assert project.run("fail").returncode == 1
    holder = project.spawn("slow", "--seconds", "60")
    project.wait_until_started(holder)
    try:
        result = project.run("show_managed_commands")
    finally:
        holder.terminate()
        project.wait(holder)
    lines = masked(result.stdout).splitlines()
    assert lines[3] == " [F] fail          failed <when> (<s>)"
    assert lines[10] == " [X] noop_once     succeeded <when> (<s>)"
    assert lines[12] == " [R] slow          running since <when>"


def test_a_running_batch_loop_shows_its_progress(project):
    assert project.run("seed_items", "--count", "1000", env=BATCHES).returncode == 0
    release = project.workdir / "release"
    release.unlink(missing_ok=True)
    env = {**BATCHES, "MC_TEST_RELEASE": str(release)}
    # Held inside batch 3, so two batches (100 rows) have committed their progress.
    process = project.spawn("backfill", "--batch-size", "50", "--hold-at", "3", env=env)
    try:
        project.wait_until_started(process)
        listed = project.run("show_managed_commands", env=BATCHES).stdout
        entries = json.loads(project.run("show_managed_commands", "--json", env=BATCHES).stdout)
    finally:
        release.touch()
        project.wait(process)
    [line] = [line for line in listed.splitlines() if " backfill " in line]
    assert re.fullmatch(
        r" \[R\] backfill +running since <when> · 10 % \(100 / 1,000\), ETA \d+ (s|min)",
        masked(line),
    ), line
    [backfill] = [entry for entry in entries if entry["name"] == "backfill"]
    assert backfill["running"] is True
    assert backfill["progress"]["total"] == 1000
    assert backfill["progress"]["count"] == 100
    assert backfill["resumed_from"] is None


def test_a_killed_run_shows_as_gone_without_an_eta_and_the_read_writes_nothing(project):
    project.empty_batch_data()
    assert project.run("seed_items", "--count", "1000", env=BATCHES).returncode == 0
    # Killed inside batch 3, so two batches (100 rows) have committed their progress.
    # A long lease: the run writes no heartbeat before it is killed.
    env = {**BATCHES, "MC_TEST_LEASE": "1000"}
    process = project.kill_once_started("backfill", "--batch-size", "50", "--hold-at", "3", env=env)
    recorded = project.rows("backfill")

    def listed(lease: str = "60") -> tuple[str, dict]:
        env = {**BATCHES, "MC_TEST_LEASE": lease}
        text = project.run("show_managed_commands", env=env).stdout
        entries = json.loads(project.run("show_managed_commands", "--json", env=env).stdout)
        [line] = [line for line in text.splitlines() if " backfill " in line]
        [entry] = [entry for entry in entries if entry["name"] == "backfill"]
        assert project.rows("backfill") == recorded  # a read writes nothing
        return masked(line), entry

    line, entry = listed()
    gone = f"process {process.pid} on {recorded[0]['hostname']} is no longer running"
    assert re.fullmatch(
        rf" \[G\] backfill +gone: {re.escape(gone)}, last heard from .+ ago "
        r"\(recorded running since <when>\) · 10 % \(100 / 1,000\)",
        line,
    ), line
    assert (entry["running"], entry["gone"], entry["last_status"]) == (False, gone, "running")
    assert entry["last_heard_at"] is not None
    assert entry["progress"] == {
        "count": 100,
        "total": 1000,
        "percent": 10,
        "per_second": None,
        "eta_seconds": None,
    }

    # Held on another host, silent since long ago: only its lease can tell.
    old = "2020-01-01 00:00:00"
    project.sql(
        f"UPDATE {TABLE} SET host_id = 'elsewhere', executed_at = ?, heartbeat_at = ?",
        (old, old),
    )
    recorded = project.rows("backfill")
    line, entry = listed(lease=str(10**10))
    assert re.fullmatch(r" \[R\] backfill +running since <when> · 10 % .*, ETA .*", line), line
    assert (entry["running"], entry["gone"]) == (True, None)
    line, entry = listed()
    assert re.fullmatch(
        rf" \[G\] backfill +gone: no heartbeat from process {process.pid} on \S+ for \d+ s "
        r"\(lease 60 s\), last heard from .+ ago \(recorded running since <when>\) · "
        r"10 % \(100 / 1,000\)",
        line,
    ), line
    assert entry["running"] is False and entry["progress"]["eta_seconds"] is None


def test_pending_lists_only_pending_commands(project):
    project.run("noop_once")
    result = project.run("show_managed_commands", "--pending")
    assert result.stdout == (
        "testapp\n"
        " [ ] needs_once    requires once, noop_once; never run\n"
        " [ ] needs_schema  requires noop_once, managed_commands.0001_initial; never run\n"
        " [ ] once          never run\n"
    )


def test_check_exits_1_while_anything_is_pending_then_0(project):
    result = project.run("show_managed_commands", "--check", "--pending", "-v0")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "CommandError: 4 run_once commands are pending: needs_once, needs_schema, noop_once, "
        "once. Run them with 'python manage.py run_pending_commands'.\n"
    )
    assert project.run("run_pending_commands").returncode == 0
    result = project.run("show_managed_commands", "--check", "--pending")
    assert (result.returncode, result.stdout) == (0, "No pending run_once commands.\n")


def test_json_reports_state_last_run_and_changes(project):
    project.run("noop_once")
    [noop_once] = [
        entry
        for entry in json.loads(project.run("show_managed_commands", "--json").stdout)
        if entry["name"] == "noop_once"
    ]
    assert noop_once.pop("last_run_at") == noop_once.pop("last_success_at")
    assert noop_once.pop("last_duration") > 0
    origin = noop_once.pop("last_origin")
    assert (origin["trigger"], origin["django_user"]) == ("manage.py", "")
    assert noop_once == {
        "name": "noop_once",
        "app_label": "testapp",
        "run_once": True,
        "requires": [],
        "phase": "post_migrate",
        "tags": [],
        "unapplied_migrations": [],
        "state": "done",
        "running": False,
        "gone": None,
        "last_heard_at": None,
        "outcome_unknown": False,
        "queued": False,
        "last_status": "succeeded",
        "changed": False,
        "progress": None,
        "resumed_from": None,
        "last_dry_run": False,
        "last_metadata": None,
        "shown_state": "done",
        "expected_every": None,
        "expected_grace": None,
        "expected_duration_max": None,
        "alarms": [],
        "late_since": None,
    }
    entries = json.loads(project.run("show_managed_commands", "--json", "--pending").stdout)
    assert [(e["name"], e["state"], e["last_status"]) for e in entries] == [
        ("needs_once", "pending", None),
        ("needs_schema", "pending", None),
        ("once", "pending", None),
    ]
    assert entries[1]["requires"] == ["noop_once", "managed_commands.0001_initial"]


def test_editing_a_done_command_marks_it_changed(project, tmp_path):
    # A command module of its own, in an app on PYTHONPATH, so the test can edit it.
    app = tmp_path / "editedapp"
    (app / "management" / "commands").mkdir(parents=True)
    for package in (app, app / "management", app / "management" / "commands"):
        (package / "__init__.py").write_text("")
    source = app / "management" / "commands" / "edited.py"
    source.write_text(
        "from managed_commands.base import ManagedBaseCommand\n\n\n"
        "class Command(ManagedBaseCommand):\n"
        "    run_once = True\n\n"
        "    def handle(self, *args, **options):\n"
        "        pass\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "MC_TEST_EXTRA_APPS": "editedapp"}
    assert project.run("edited", env=env).returncode == 0
    before = project.run("show_managed_commands", env=env).stdout
    assert masked(before).startswith("editedapp\n [X] edited  succeeded <when> (<s>)\n")
    source.write_text(source.read_text() + "        # a fix\n")
    after = project.run("show_managed_commands", env=env).stdout
    assert masked(after).startswith(
        "editedapp\n [X] edited  succeeded <when> (<s>); "
        "source changed since its last successful run\n"
    )
    [entry] = [
        e
        for e in json.loads(project.run("show_managed_commands", "--json", env=env).stdout)
        if e["name"] == "edited"
    ]
    assert entry["changed"] is True and entry["state"] == "done"


def test_graph_is_mermaid_of_every_command_even_with_pending(project):
    project.run("noop_once")
    result = project.run("show_managed_commands", "--graph", "--pending")
    assert result.stdout.splitlines()[:24] == [
        "flowchart LR",
        '    subgraph app_testapp["testapp"]',
        '        cmd_concurrent["concurrent"]:::repeatable',
        '        cmd_exit_with["exit_with"]:::repeatable',
        '        cmd_fail["fail"]:::repeatable',
        '        cmd_leaky["leaky"]:::repeatable',
        '        cmd_needs_auth["needs_auth"]:::repeatable',
        '        cmd_needs_once["needs_once"]:::pending',
        '        cmd_needs_schema["needs_schema"]:::pending',
        '        cmd_noisy["noisy"]:::repeatable',
        '        cmd_noop_managed["noop_managed"]:::repeatable',
        '        cmd_noop_once["noop_once"]:::done',
        '        cmd_once["once"]:::pending',
        '        cmd_slow["slow"]:::repeatable',
        '        cmd_talk["talk"]:::repeatable',
        '        cmd_with_options["with_options"]:::repeatable',
        "    end",
        '    mig_auth_0001_initial[("auth.0001_initial")]:::migration',
        '    mig_managed_commands_0001_initial[("managed_commands.0001_initial")]:::migration',
        "    mig_auth_0001_initial --> cmd_needs_auth",
        "    cmd_once --> cmd_needs_once",
        "    cmd_noop_once --> cmd_needs_once",
        "    cmd_noop_once --> cmd_needs_schema",
        "    mig_managed_commands_0001_initial --> cmd_needs_schema",
    ]
    styles = result.stdout.splitlines()[24:]
    assert [line.split()[:2] for line in styles] == [
        ["classDef", name]
        for name in (
            "done",
            "pending",
            "failed",
            "running",
            "gone",
            "outcome_unknown",
            "queued",
            "repeatable",
            "late",
            "overrunning",
            "migration",
            "unknown",
        )
    ]


def test_all_tenants_without_django_tenants_is_a_clear_error(project):
    result = project.run("show_managed_commands", "--all-tenants")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "NotMultiTenant: Runs across tenants need django-tenants, which is not in "
        "INSTALLED_APPS. With another multi-tenancy scheme, run the command once per scope "
        "instead.\n"
    )
