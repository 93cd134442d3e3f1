"""An end the database refuses: the outcome still lands with less, or the run says it
ran and its row keeps the command from running again (real processes, every backend)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.processes import TABLE, ProcessProject

pytestmark = pytest.mark.processes


@contextmanager
def refusing(project: ProcessProject, condition: str) -> Iterator[None]:
    """Make the database refuse every row of the history where ``condition`` holds: a
    CHECK constraint on PostgreSQL and MariaDB, a trigger on SQLite (which cannot add
    one to a table). ``condition`` names a column as ``{row}output``."""
    if project.backend == "sqlite":
        project.sql(
            f"CREATE TRIGGER mc_test_refuse BEFORE UPDATE ON {TABLE} FOR EACH ROW "
            f"WHEN {condition.format(row='NEW.')} BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        undo = "DROP TRIGGER mc_test_refuse"
    else:
        check = condition.format(row="").replace("%", "%%")  # the drivers' placeholders
        project.sql(f"ALTER TABLE {TABLE} ADD CONSTRAINT mc_test_refuse CHECK (NOT ({check}))")
        undo = f"ALTER TABLE {TABLE} DROP CONSTRAINT mc_test_refuse"
    try:
        yield
    finally:
        project.sql(undo)


def _runs_of_once(project: ProcessProject) -> list[str]:
    return [line for line in project.effect_lines() if line.startswith("once ")]


def test_an_output_the_database_refuses_is_replaced_by_a_note_that_names_the_error(project):
    # PostgreSQL's error repeats the refused row ("DETAIL: Failing row contains
    # (... once: done ...)"): a note quoting it would be refused too.
    with refusing(project, "{row}output LIKE '%once: done%'"):
        result = project.run("once")
        assert result.returncode == 0, result.stderr
        [row] = project.rows("once")
        assert (row["status"], row["success"], row["lock_key"]) == ("succeeded", True, None)
        assert row["output"].startswith("[managed_commands: output not stored: IntegrityError")
        assert "once: done" not in row["output"] and "Failing row" not in row["output"]
        assert row["finished_at"] is not None and row["duration"] is not None
        assert project.run("once").stdout.startswith("Skipped 'once'")
    assert len(_runs_of_once(project)) == 1


def test_an_end_refused_with_any_text_still_records_its_status_and_times(project):
    with refusing(project, "{row}output <> '' OR {row}stderr <> ''"):
        result = project.run("once")
        assert result.returncode == 0, result.stderr
        [row] = project.rows("once")
    assert (row["status"], row["success"], row["lock_key"]) == ("succeeded", True, None)
    assert (row["output"], row["stderr"], row["error_message"]) == ("", "", "")
    assert row["finished_at"] is not None and row["duration"] is not None
    assert project.run("once").stdout.startswith("Skipped 'once'")
    assert len(_runs_of_once(project)) == 1


def _end_unrecorded(project: ProcessProject) -> dict:
    """Run ``once`` to success while the database refuses every success; return its row."""
    with refusing(project, "{row}status = 'succeeded'"):
        result = project.run("once")
        assert result.returncode == 8, result.stderr
        assert result.stdout == "once: done\n"
        [row] = project.rows("once")
        assert result.stderr.startswith(
            "OutcomeUnknown: 'once' ran to its end, but its end could not be recorded in "
            "database 'default' (IntegrityError"
        )
        assert (
            f"Check the database. Run #{row['id']} stays 'running', marked as ended with its "
            f"outcome unknown, and keeps its claim, so 'once' is not run again until you settle "
            f"it: check whether its work is complete; if it is, mark it done with 'python "
            f"manage.py run_pending_commands --fake once', if not, run it again with 'python "
            f"manage.py once --rerun'.\n"
        ) in result.stderr
    assert row["status"] == "running" and row["lock_key"] is not None
    assert row["finished_at"] is not None and row["duration"] is not None
    return row


def test_a_run_whose_end_cannot_be_recorded_exits_8_and_is_not_run_again(project):
    row = _end_unrecorded(project)

    [listed] = [
        line
        for line in project.run("show_managed_commands").stdout.splitlines()
        if " once " in line
    ]
    assert listed.startswith(" [?] once          outcome unknown 20")
    assert listed.endswith(f": run #{row['id']} ended, but its end could not be recorded")
    [shown] = [
        c
        for c in json.loads(project.run("show_managed_commands", "--json").stdout)
        if c["name"] == "once"
    ]
    assert shown["outcome_unknown"] is True and shown["running"] is False
    assert shown["state"] == "pending"
    # Closing runs whose process is gone leaves it: it ended.
    assert project.run("show_managed_commands", "--check").returncode == 1
    assert project.rows("once")[0]["status"] == "running"

    again = project.run("once")
    assert again.returncode == 8
    assert again.stderr.startswith(
        f"OutcomeUnknown: 'once' was not run: its run #{row['id']} (process {row['pid']} on host "
    )
    assert ") ended, but its end could not be recorded, so its outcome is unknown: check " in (
        again.stderr
    )
    deploy = project.run("run_pending_commands")
    assert deploy.returncode == 8
    assert "PendingCommandFailed: 'once' was not run: its run #" in deploy.stderr
    assert deploy.stderr.endswith(
        "run_pending_commands stopped. Still pending: once, needs_once.\n"
    )
    assert len(_runs_of_once(project)) == 1

    # Settled as done: faked, and never run again.
    assert project.run("run_pending_commands", "--fake", "once").returncode == 0
    assert project.run("once").stdout.startswith("Skipped 'once'")
    assert [(r["status"], r["lock_key"]) for r in project.rows("once")] == [
        ("abandoned", None),
        ("faked", None),
    ]
    assert len(_runs_of_once(project)) == 1


def test_a_run_whose_outcome_is_unknown_runs_again_only_when_rerun(project):
    row = _end_unrecorded(project)
    result = project.run("once", "--rerun")
    assert result.returncode == 0, result.stderr
    first, rerun = project.rows("once")
    assert first["id"] == row["id"] and first["status"] == "abandoned"
    assert first["error_message"] == "Abandoned: it ended, but its end could not be recorded."
    assert (rerun["status"], rerun["forced"]) == ("succeeded", True)
    assert len(_runs_of_once(project)) == 2


def test_a_run_that_cannot_even_be_marked_ended_says_so_and_fake_settles_it(project):
    # Every write of its end sets finished_at: the mark is refused too.
    with refusing(project, "{row}finished_at IS NOT NULL"):
        result = project.run("once")
        assert result.returncode == 8, result.stderr
        [row] = project.rows("once")
    assert (row["status"], row["finished_at"]) == ("running", None)
    assert (
        f"Run #{row['id']} could not even be marked as ended: it stays 'running', and once its "
        f"process is found gone the next start runs 'once' again. Before that, check whether "
        f"its work is complete; if it is, mark it done with 'python manage.py "
        f"run_pending_commands --fake once'"
    ) in result.stderr
    # Faking closes the run whose process is gone first, so the faked run holds the claim.
    assert project.run("run_pending_commands", "--fake", "once").returncode == 0
    assert project.run("once").stdout.startswith("Skipped 'once'")
    assert [r["status"] for r in project.rows("once")] == ["abandoned", "faked"]
    assert len(_runs_of_once(project)) == 1
