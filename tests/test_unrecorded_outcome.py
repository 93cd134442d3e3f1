"""An end the database refuses: the outcome still lands with less (real processes,
every backend)."""

from __future__ import annotations

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
