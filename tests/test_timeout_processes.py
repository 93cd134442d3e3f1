"""Timeouts as a user meets them running ``python manage.py <name>``: exit code, stderr, row."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest

from tests.timeoutapp.management.commands.lock_row import ITEM

pytestmark = pytest.mark.processes
TIMEOUT_APP = {"MC_TEST_EXTRA_APPS": "tests.timeoutapp"}
#: The database's own words for each timeout, as the run's message quotes them.
STOPPED = {
    ("postgresql", "statement_timeout"): "canceling statement due to statement timeout",
    ("postgresql", "lock_timeout"): "canceling statement due to lock timeout",
    (
        "mariadb",
        "statement_timeout",
    ): "Query execution was interrupted (max_statement_time exceeded)",
    ("mariadb", "lock_timeout"): "Lock wait timeout exceeded; try restarting transaction",
}


def run_timed(project, *argv):
    started = time.monotonic()
    result = project.run(*argv, env=TIMEOUT_APP, timeout=60)
    return result, time.monotonic() - started


@pytest.mark.backends("postgresql", "mariadb")
@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_statement_timeout_stops_a_long_query_and_fails_the_run(project, atomic):
    result, took = run_timed(project, "slow_query", "--seconds", "5", *(["--atomic"] * atomic))
    message = (
        "'slow_query' failed: its statement_timeout of 1 s stopped a query "
        f"({STOPPED[project.backend, 'statement_timeout']})."
    )
    assert (result.returncode, result.stderr) == (1, f"StatementTimedOut: {message}\n")
    assert result.stdout == "slow_query: started\n"
    [row] = project.rows("slow_query")
    assert row["status"] == "failed" and row["error_message"] == f"StatementTimedOut: {message}"
    assert "OperationalError" in row["traceback"]
    # The query was stopped at 1 s, not left to its 5 (the rest is Python starting).
    assert 0.9 < row["duration"] < 2.5 and took < 4.5


@contextmanager
def row_locked(project):
    """Item ``ITEM``, locked by another connection's open transaction for the block."""
    group = '"group"' if project.backend == "postgresql" else "`group`"
    project.sql(
        f"INSERT INTO batchmodels_item (number, {group}, processed) VALUES ({ITEM}, 0, 0)",
        database=project.name,
    )
    try:
        with project.locked(
            f"SELECT * FROM batchmodels_item WHERE number = {ITEM} FOR UPDATE",
            database=project.name,
        ):
            yield
    finally:
        project.sql(f"DELETE FROM batchmodels_item WHERE number = {ITEM}", database=project.name)


@pytest.mark.backends("postgresql", "mariadb")
@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_lock_timeout_stops_a_wait_for_a_row_lock(project, atomic):
    with row_locked(project):
        result, took = run_timed(project, "lock_row", *(["--atomic"] * atomic))
    message = (
        "'lock_row' failed: its lock_timeout of 1 s stopped a query waiting for a lock "
        f"({STOPPED[project.backend, 'lock_timeout']})."
    )
    assert (result.returncode, result.stderr) == (1, f"StatementTimedOut: {message}\n")
    [row] = project.rows("lock_row")
    assert row["status"] == "failed" and row["error_message"] == f"StatementTimedOut: {message}"
    # The project's own lock timeout is 30 s (tests/settings.py): the command's held.
    assert 0.9 < row["duration"] < 2.5 and took < 10


@pytest.mark.backends("postgresql", "mariadb")
def test_timeouts_are_set_in_and_out_of_transactions(project):
    result, _ = run_timed(project, "show_timeouts")
    shown = "('2s', '500ms')" if project.backend == "postgresql" else "(2.0, 1)"
    assert (result.returncode, result.stdout) == (0, f"autocommit: {shown}\natomic: {shown}\n")


@pytest.mark.backends("sqlite", "postgresql", "mariadb")
def test_time_limit_interrupts_the_run(project):
    result, took = run_timed(project, "over_time", "--seconds", "30")
    [row] = project.rows("over_time")
    assert result.returncode == 7
    line = (
        f"TimeLimitReached: 'over_time' (run #{row['id']}): Stopped: time_limit of 1 s reached.\n"
    )
    # On SQLite the system checks warn first, of the commands with database timeouts.
    assert result.stderr.endswith(line) and "Traceback" not in result.stderr
    assert row["status"] == "interrupted" and not row["success"]
    assert row["error_message"] == "Stopped: time_limit of 1 s reached."
    assert row["output"] == "over_time: started\n"
    assert 0.9 < row["duration"] < 2.5 and took < 10


@pytest.mark.backends("sqlite", "postgresql", "mariadb")
def test_time_limit_cuts_a_query_short(project):
    result, took = run_timed(project, "over_time", "--seconds", "30", "--query")
    [row] = project.rows("over_time")
    assert result.returncode == 7
    assert (row["status"], row["error_message"]) == (
        "interrupted",
        "Stopped: time_limit of 1 s reached.",
    )
    assert 0.9 < row["duration"] < 2.5 and took < 10


@pytest.mark.backends("sqlite")
def test_manage_py_check_warns_of_database_timeouts_on_sqlite(project):
    result = project.run("check", env=TIMEOUT_APP, timeout=60)
    assert result.returncode == 0
    assert (
        "slow_query: (managed_commands.W002) 'slow_query' sets statement_timeout, but the "
        "database its commands run on ('default') is SQLite, which has no such timeouts: "
        "they are ignored there.\n"
    ) in result.stderr
    assert result.stderr.endswith("System check identified 3 issues (0 silenced).\n")
