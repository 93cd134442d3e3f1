"""What a user sees running ``python manage.py <name>``: exit codes, terminal, rows."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from managed_commands.recorder import command_key
from tests import backends
from tests.processes import LAYOUTS, TABLE

# Every scenario also runs with the history on a second database.
pytestmark = [pytest.mark.processes, pytest.mark.layouts(*LAYOUTS)]


def test_success_is_recorded_with_live_output(project):
    result = project.run("talk")
    assert result.returncode == 0
    assert result.stdout == "stdout: café ✓ 数据\nprint: to sys.stdout\nreturned text\n"
    assert "stderr: careful\nprint: to sys.stderr\n" in result.stderr
    [row] = project.rows("talk")
    assert row["status"] == "succeeded" and row["success"]
    assert row["output"] == result.stdout
    assert row["stderr"].startswith("stderr: careful\nprint: to sys.stderr\n")
    assert row["lock_key"] is None and row["duration"] > 0 and row["finished_at"]


def test_command_error_keeps_its_message_and_exit_code(project):
    result = project.run("fail", "--code", "7")
    assert result.returncode == 7
    assert result.stderr == "CommandError: it went wrong\n"
    [row] = project.rows("fail")
    assert row["status"] == "failed" and not row["success"]
    assert row["error_message"] == "CommandError: it went wrong"
    assert "raise CommandError" in row["traceback"]
    assert row["output"] == "fail: about to fail\n"


def test_crash_prints_the_usual_traceback_and_exits_1(project):
    result = project.run("fail", "--crash")
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("ValueError: the data is bad")
    assert "Traceback (most recent call last)" in result.stderr
    [row] = project.rows("fail")
    assert row["status"] == "failed"
    assert row["error_message"] == "ValueError: the data is bad"


def test_run_once_skips_after_success_and_reruns_after_failure(project):
    assert project.run("once", "--fail").returncode == 1
    first = project.run("once")
    assert first.returncode == 0 and first.stdout == "once: done\n"
    second = project.run("once")
    assert second.returncode == 0
    assert second.stdout.startswith(
        "Skipped 'once': this run_once command already ran successfully on "
    )
    assert second.stdout.endswith("Pass --rerun to run it again.\n")
    assert project.effect_lines() == [f"once {pid}" for pid in _pids(project, "once")]
    assert [r["status"] for r in project.rows("once")] == ["failed", "succeeded"]


def test_rerun_runs_again_and_is_recorded_as_forced(project):
    assert project.run("once").returncode == 0
    assert project.run("once", "--rerun").returncode == 0
    assert [r["forced"] for r in project.rows("once")] == [False, True]
    assert len(project.effect_lines()) == 2


def test_missing_requirements_are_all_named_and_body_not_run(project):
    result = project.run("needs_once")
    assert result.returncode == 1
    assert result.stderr == (
        "RequirementNotMet: Cannot run 'needs_once': it requires 'once', 'noop_once', which "
        "have not run successfully yet. Run them first (python manage.py run_pending_commands "
        "runs everything pending in order).\n"
    )
    assert project.rows("needs_once") == [] and project.effect_lines() == []
    project.run("once")
    project.run("noop_once")
    assert project.run("needs_once").returncode == 0
    assert project.effect_lines()[-1].startswith("needs_once ")


def test_required_migrations_are_checked_on_the_commands_database(project):
    # With a router, auth's migrations are applied on default and not on history.
    result = project.run("needs_auth")
    assert (result.returncode, result.stdout) == (0, "needs_auth: done\n"), result.stderr


def test_bad_definition_is_a_clear_error_not_a_traceback(project):
    result = project.run("bad_requires", env={"MC_TEST_EXTRA_APPS": "tests.brokenapp"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "requires must be a list of command names, for example requires = ['once']" in result.stderr
    )


@pytest.mark.parametrize(
    ("code", "status", "success"), [(0, "succeeded", True), (3, "interrupted", False)]
)
def test_system_exit(project, code, status, success):
    result = project.run("exit_with", str(code))
    assert result.returncode == code
    [row] = project.rows("exit_with")
    assert (row["status"], bool(row["success"])) == (status, success)
    assert row["output"] == "exiting\n"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_marks_interrupted_keeps_exit_code_and_frees_the_lock(project, signum):
    process = project.spawn("slow", "--seconds", "600")
    project.wait_until_started(process)
    process.send_signal(signum)
    project.wait(process)
    assert process.returncode == -signum
    [row] = project.rows("slow")
    assert row["status"] == "interrupted" and not row["success"]
    assert row["error_message"] in (
        "Terminated by SIGTERM.",
        "Interrupted by SIGINT (KeyboardInterrupt).",
    )
    assert row["output"] == "slow: started\n"
    assert row["lock_key"] is None
    assert project.run("slow", "--seconds", "0").returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_claim_waits_on_a_lock_frees_the_claim(project, signum):
    assert project.run("once", "--fail").returncode == 1
    [failed] = project.rows("once")
    claiming = project.workdir / "claiming"
    claiming.unlink(missing_ok=True)
    # Another connection's open transaction gives the failed row the claim's
    # key: the next claim's INSERT waits for it (the unique index on PostgreSQL
    # and MariaDB, the write lock on SQLite).
    with backends.connect(project.backend, project.history_name) as blocker:
        cursor = blocker.cursor()
        cursor.execute("BEGIN")
        cursor.execute(
            f"UPDATE {TABLE} SET lock_key = '{command_key('once', '')}' WHERE id = {failed['id']}"
        )
        try:
            process = project.spawn("once", env={"MC_TEST_CLAIMING": str(claiming)})
            project.wait_for_file(process, claiming)
            process.send_signal(signum)
        finally:
            cursor.execute("ROLLBACK")
    project.wait(process)
    # As for a signal anywhere else: the process ends by it, the row is
    # interrupted and its claim free.
    assert process.returncode == -signum
    [_, row] = project.rows("once")
    assert (row["status"], row["success"], row["lock_key"]) == ("interrupted", False, None)
    assert row["error_message"] in (
        "Terminated by SIGTERM.",
        "Interrupted by SIGINT (KeyboardInterrupt).",
    )
    assert len(project.effect_lines()) == 1
    assert project.run("once").stdout == "once: done\n"


def test_kill_9_is_recovered_at_once_and_marked_abandoned(project):
    process = project.spawn("once", "--seconds", "60")
    project.wait_until_started(process)
    process.kill()
    process.wait()
    # A lease of an hour and a wait of 5 s: only the dead-process check can let this in.
    env = {"MC_TEST_WAIT_TIMEOUT": "5", "MC_TEST_LEASE": "3600"}
    result = project.run("once", env=env)
    assert result.returncode == 0, result.stderr
    first, second = project.rows("once")
    assert first["status"] == "abandoned" and not first["success"]
    assert (
        first["error_message"]
        == f"Abandoned: process {process.pid} on {first['hostname']} is no longer running."
    )
    assert second["status"] == "succeeded"
    assert len(project.effect_lines()) == 2


def test_overlap_waits_then_gives_up_naming_the_holder(project):
    holder = project.spawn("slow", "--seconds", "60")
    project.wait_until_started(holder)
    try:
        result = project.run("slow", "--seconds", "0", env={"MC_TEST_WAIT_TIMEOUT": "1"})
    finally:
        holder.terminate()
        project.wait(holder)
    assert result.returncode == 3
    assert f"process {holder.pid} on " in result.stderr
    assert "Gave up after waiting 1 s" in result.stderr
    assert "running since" in result.stderr
    assert len(project.rows("slow")) == 1


def test_allow_concurrent_runs_overlap(project):
    first = project.spawn("concurrent", "--seconds", "60")
    project.wait_until_started(first)
    try:
        second = project.run("concurrent", "--seconds", "0")
        assert first.poll() is None
    finally:
        first.terminate()
        project.wait(first)
    assert second.returncode == 0
    assert len(project.effect_lines()) == 2


def test_parameters_are_json_with_secrets_redacted(project):
    result = project.run(
        "with_options",
        "a",
        "b",
        "--password",
        "s3cret",
        "--api-key",
        "k",
        "--dsn",
        "pg://u:p@h",
        "--day",
        "2026-01-02",
    )
    assert result.returncode == 0
    [row] = project.rows("with_options")
    parameters = (
        row["parameters"] if isinstance(row["parameters"], dict) else json.loads(row["parameters"])
    )
    assert parameters == {
        "args": [],
        "options": {
            "names": ["a", "b"],
            "password": "********",
            "api_key": "********",
            "dsn": "********",
            "day": "2026-01-02",
            "count": 3,
        },
    }
    assert "s3cret" not in json.dumps(parameters)


def _pids(project, name):
    return [row["pid"] for row in project.rows(name) if row["status"] != "abandoned"]


def test_a_long_run_keeps_its_heartbeat_fresh(project):
    process = project.spawn("slow", "--seconds", "60", env={"MC_TEST_LEASE": "0.4"})
    project.wait_until_started(process)
    beats = set()
    deadline = time.monotonic() + 30
    try:
        while len(beats) < 2 and time.monotonic() < deadline:
            [(pk, beat)] = project.sql(f"SELECT id, heartbeat_at FROM {TABLE}")
            if project.backend == "sqlite":
                # On SQLite the run beats in a file beside the database, not in
                # it; the file appears at the first beat.
                file = _beat_file(project, pk)
                beat = file.stat().st_mtime_ns if file.exists() else None
            if beat is not None:
                beats.add(str(beat))
            time.sleep(0.05)
    finally:
        process.terminate()
        project.wait(process)
    assert len(beats) >= 2
    if project.backend == "sqlite":
        assert not _beat_file(project, pk).exists()  # removed when the run ended


def _beat_file(project, pk):
    database = Path(project.history_name).resolve()
    return database.parent / f".{database.name}.managed_commands" / f"{pk}.beat"


@pytest.mark.layouts("history-by-setting", "history-by-router")
def test_history_is_only_on_the_database_it_was_told(project):
    """The default database has no history table at all, so nothing can be written there."""
    assert TABLE not in project.tables(project.name)
    assert TABLE in project.tables(project.history_name)
    result = project.run("once")
    assert result.returncode == 0, result.stderr
    assert [row["status"] for row in project.rows("once")] == ["succeeded"]
