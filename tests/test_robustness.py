"""Transactions, unreachable history, awkward data: in real processes on every backend."""

from __future__ import annotations

import pytest

from tests.processes import ProcessProject

pytestmark = pytest.mark.processes


def test_a_rolled_back_caller_takes_the_record_with_it(project):
    result = project.run("in_transaction", "--rollback")
    assert result.returncode == 1 and "rolled back on purpose" in result.stderr
    assert project.rows("once") == []
    # The work was rolled back too, so the command is still pending and runs again.
    assert project.run("once").stdout == "once: done\n"
    assert len(project.effect_lines()) == 2


def test_a_committed_caller_keeps_the_record(project):
    assert project.run("in_transaction").returncode == 0
    assert [r["status"] for r in project.rows("once")] == ["succeeded"]
    assert project.run("once").stdout.startswith("Skipped 'once'")


def test_a_failure_inside_a_rolled_back_transaction_keeps_its_row(project):
    result = project.run("in_transaction", "--fail-inner")
    assert result.returncode == 1
    assert "RuntimeError: once failed on purpose" in result.stderr
    # The rollback took the row the run wrote; the failure was written again.
    [row] = project.rows("once")
    assert (row["status"], row["success"], row["lock_key"]) == ("failed", False, None)
    assert row["error_message"] == "RuntimeError: once failed on purpose"
    assert "raise RuntimeError" in row["traceback"]
    # Still pending: the next run runs.
    assert project.run("once").stdout == "once: done\n"
    assert [r["status"] for r in project.rows("once")] == ["failed", "succeeded"]


def test_a_failure_inside_a_committed_transaction_is_recorded_once(project):
    result = project.run("in_transaction", "--fail-inner", "--catch")
    assert result.returncode == 0, result.stderr
    assert [r["status"] for r in project.rows("once")] == ["failed"]


def test_a_claim_inside_an_open_transaction_still_excludes_other_processes(project):
    release = project.workdir / "release"
    release.unlink(missing_ok=True)
    holder = project.spawn("in_transaction", "--hold", env={"MC_TEST_RELEASE": str(release)})
    project.wait_until_started(holder)
    try:
        waiter = project.run(
            "once", env={"MC_TEST_WAIT_TIMEOUT": "2", "MC_TEST_LOCK_TIMEOUT": "0.5"}
        )
    finally:
        release.touch()
        project.wait(holder)
    assert waiter.returncode == 3, waiter.stderr
    assert "Cannot start 'once': another run holds its lock" in waiter.stderr
    assert holder.returncode == 0
    assert len(project.effect_lines()) == 1
    assert project.run("once").stdout.startswith("Skipped 'once'")


def test_a_missing_table_fails_closed(backend, tmp_path):
    bare = ProcessProject(backend, tmp_path).create(migrate=False)
    try:
        result = bare.run("once")
    finally:
        bare.drop()
    assert result.returncode == 4
    assert result.stderr == (
        "TrackingUnavailable: The command was not run: its run cannot be recorded because the "
        "table 'managed_commands_commandexecution' does not exist in database 'default'. "
        "Run 'python manage.py migrate managed_commands' first.\n"
    )
    assert not bare.effects.exists()


def test_an_unreachable_database_fails_closed(project, tmp_path):
    unreachable = {
        "sqlite": {"MC_TEST_DB_NAME": str(tmp_path / "missing-dir" / "db.sqlite3")},
        "postgresql": {"MC_TEST_PG_PORT": "1"},
        "mariadb": {"MC_TEST_MYSQL_PORT": "1"},
    }[project.backend]
    # A server that does not answer is waited for (a failover), saying so once, then
    # given up on; a SQLite file has no server to wait for.
    result = project.run("once", env={**unreachable, "MC_TEST_RECONNECT": "1"})
    assert result.returncode == 4
    waiting = (
        "database 'default' unreachable (OperationalError): retrying for up to 1 s "
        "(MANAGED_COMMANDS['RECONNECT_TIMEOUT']).\n"
    )
    if project.backend != "sqlite":
        assert result.stderr.startswith(waiting), result.stderr
    stderr = result.stderr.removeprefix(waiting)
    assert stderr.startswith(
        "TrackingUnavailable: The command was not run: its run cannot be recorded in database "
        "'default' (OperationalError: "
    )
    assert "Check that the database is reachable and DATABASES['default'] is right" in stderr
    assert "unreachable" not in stderr and "Traceback" not in stderr
    assert project.effect_lines() == []


def test_nul_bytes_are_stored_sanitised(project):
    result = project.run("noisy", "--kind", "nul")
    assert result.returncode == 0 and result.stdout == "before\x00after\n"
    [row] = project.rows("noisy")
    assert row["status"] == "succeeded" and row["output"] == "before\ufffdafter\n"


def test_invalid_utf8_is_shown_raw_and_stored_sanitised(project):
    process = project.spawn(
        "noisy", "--kind", "surrogate", env={"PYTHONIOENCODING": "utf-8:surrogateescape"}
    )
    process.stdout.reconfigure(errors="surrogateescape")
    stdout, _ = project.wait(process)
    assert process.returncode == 0
    assert stdout.encode("utf-8", "surrogateescape") == b"bad \xff\xfe bytes\n"
    [row] = project.rows("noisy")
    assert row["output"] == "bad \ufffd\ufffd bytes\n"


def test_a_single_10_mb_line_is_shown_whole_and_stored_clipped(project):
    result = project.run("noisy", "--kind", "long-line", "--megabytes", "10")
    assert result.returncode == 0 and len(result.stdout) == 10_000_001
    [row] = project.rows("noisy")
    assert row["status"] == "succeeded"
    assert "characters not stored" in row["output"] and len(row["output"]) < 100_100


def test_a_name_past_255_characters_is_recorded(project):
    code = (
        "from managed_commands.utils import record_command_execution as r;"
        "print(len(r('n' * 300, output='a\\x00b').command_name))"
    )
    result = project.run("shell", "-v", "0", "-c", code)
    assert result.returncode == 0 and result.stdout == "255\n", result.stderr
    [name] = [
        row[0] for row in project.sql("SELECT command_name FROM managed_commands_commandexecution")
    ]
    assert name.startswith("n" * 246 + "~") and len(name) == 255
