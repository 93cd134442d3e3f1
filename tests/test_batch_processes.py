"""Batch loops in real manage.py processes: kill -9 mid-batch, stop, resume, restart."""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys

import pytest

from tests.processes import BATCHES, MANAGE, ProcessProject


@pytest.fixture
def items(project: ProcessProject):
    """Return a function seeding ``count`` unprocessed items in the project's database."""
    project.empty_batch_data()

    def seed(count: int) -> None:
        result = project.run("seed_items", "--count", str(count), env=BATCHES)
        assert result.returncode == 0, result.stderr

    return seed


def processed(project: ProcessProject) -> dict[int, int]:
    """How many items were processed how many times."""
    rows = project.sql(
        "SELECT processed, COUNT(*) FROM batchmodels_item GROUP BY processed",
        database=project.name,
    )
    return {int(times): int(count) for times, count in rows}


def progress(project: ProcessProject) -> list[tuple]:
    return project.sql(
        "SELECT id, status, tick_count, tick_total, resumed_from_id "
        "FROM managed_commands_commandexecution WHERE command_name = 'backfill' ORDER BY id"
    )


def test_kill_9_mid_batch_then_a_plain_rerun_processes_every_row_exactly_once(project, items):
    items(100_000)
    # Inside batch 37 of 100, after its update and before its commit.
    project.kill_once_started(
        "backfill", "--batch-size", "1000", "--hold-at", "37", env=BATCHES, timeout=120
    )
    [(first, status, count, total, _)] = progress(project)
    assert (status, count, total) == ("running", 36_000, 100_000)
    assert processed(project) == {1: 36_000, 0: 64_000}
    result = project.run("backfill", env=BATCHES)
    assert result.returncode == 0, result.stderr
    assert processed(project) == {1: 100_000}
    dead, resumed = progress(project)
    assert dead[1] == "abandoned"
    assert resumed == (resumed[0], "succeeded", 100_000, 100_000, first)


def test_a_saved_cursor_outlives_25_starts_that_ended_before_their_loop(project, items):
    items(2_000)
    # Killed inside batch 20: 1,900 rows committed with their cursor.
    project.kill_once_started("backfill", "--batch-size", "100", "--hold-at", "20", env=BATCHES)
    [(saved, *_)] = progress(project)
    # More than any look-back over the newest runs would read: setup steps that
    # crash, and every fifth start killed -9 in its setup (taken over by the next).
    for start in range(1, 26):
        if start % 5:
            crashed = project.run("backfill", "--before-loop", "crash", env=BATCHES)
            assert crashed.returncode == 1, crashed.stderr
            continue
        project.started.unlink()
        project.kill_once_started("backfill", "--before-loop", "hold", env=BATCHES)
    result = project.run("backfill", "--batch-size", "100", env=BATCHES)
    assert result.returncode == 0, result.stderr
    assert processed(project) == {1: 2_000}
    runs = progress(project)
    assert len(runs) == 27 and [status for _, status, *_ in runs[1:-1]] == [
        "abandoned" if start % 5 == 0 else "failed" for start in range(1, 26)
    ]
    assert runs[-1][1:] == ("succeeded", 2_000, 2_000, saved)


def test_stop_ends_the_loop_within_one_batch_then_it_resumes_or_restarts(project, items):
    items(2_000)
    release = project.workdir / "release"
    release.unlink(missing_ok=True)
    env = {**BATCHES, "MC_TEST_RELEASE": str(release)}
    # Held inside batch 5 (4 committed) until the stop has been asked for.
    process = project.spawn("backfill", "--batch-size", "100", "--hold-at", "5", env=env)
    try:
        project.wait_until_started(process)
        stop = project.run("stop_managed_command", "backfill", env=BATCHES)
    finally:
        release.touch()
        _, stderr = project.wait(process)
    assert stop.returncode == 0, stop.stderr
    assert "Asked #" in stop.stdout and "to stop" in stop.stdout
    assert process.returncode == 6, stderr
    assert "stopped as asked" in stderr and "Traceback" not in stderr
    [(stopped, status, count, _, _)] = progress(project)
    # The batch in progress when it was asked finished and committed; no other began.
    assert (status, count) == ("interrupted", 500)
    assert processed(project) == {1: 500, 0: 1_500}

    # Nothing runs now: asking again says so.
    again = project.run("stop_managed_command", "backfill", env=BATCHES)
    assert again.returncode == 1 and "No run of 'backfill' is running" in again.stderr

    resumed = project.run("backfill", env=BATCHES)
    assert resumed.returncode == 0, resumed.stderr
    assert processed(project) == {1: 2_000}
    assert progress(project)[-1][1:] == ("succeeded", 2_000, 2_000, stopped)

    # --restart (with --rerun, as the command is done) starts the loop over.
    restarted = project.run("backfill", "--rerun", "--restart", env=BATCHES)
    assert restarted.returncode == 0, restarted.stderr
    assert processed(project) == {2: 2_000}
    assert progress(project)[-1][1:] == ("succeeded", 2_000, 2_000, None)


@pytest.mark.layouts("history-by-setting")
def test_rows_on_another_database_than_the_history_are_marked_at_least_once(project, items):
    items(500)
    result = project.run("backfill", "--batch-size", "100", env=BATCHES)
    assert result.returncode == 0, result.stderr
    assert processed(project) == {1: 500}
    [(status, at_least_once, count)] = project.sql(
        "SELECT status, at_least_once, tick_count FROM managed_commands_commandexecution"
    )
    assert (status, bool(at_least_once), count) == ("succeeded", True, 500)


def test_a_terminal_sees_a_progress_line_the_record_never_does(project, items):
    items(3_000)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(MANAGE), "backfill", "--batch-size", "100", "--pause", "0.05"],
        env={**project.env, **BATCHES},
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
        while chunk := os.read(controller, 4096):
            shown += chunk
    os.close(controller)
    stdout, _ = project.wait(process)
    assert (process.returncode, stdout) == (0, "backfill: done\n")
    lines = shown.decode().split("\r\x1b[K")
    assert len(lines) >= 3 and lines[-1] == "100 % (3,000 / 3,000)\r\n"
    assert any(" % (" in line and "ETA" in line for line in lines[1:-1])
    [(output, stderr)] = project.sql("SELECT output, stderr FROM managed_commands_commandexecution")
    assert (output, stderr) == ("backfill: done\n", "")
