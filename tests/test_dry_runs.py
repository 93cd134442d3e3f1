"""Audited dry runs in real manage.py processes: nothing changes, the row says what would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.processes import BATCHES, ProcessProject

pytestmark = pytest.mark.processes

WOULD_WRITE = {
    "batchmodels_item": {"INSERT": 3, "UPDATE": 3, "DELETE": 1},
    "batchmodels_label": {"INSERT": 1},
}


@pytest.fixture
def data(project: ProcessProject) -> ProcessProject:
    """The project with its data tables emptied (they outlive each test's history)."""
    project.empty_batch_data()
    return project


def counts(project: ProcessProject) -> tuple[int, int]:
    """Items and labels in the project's database."""
    return tuple(  # type: ignore[return-value]
        project.sql(f"SELECT COUNT(*) FROM {table}", database=project.name)[0][0]
        for table in ("batchmodels_item", "batchmodels_label")
    )


def dry_rows(project: ProcessProject, name: str) -> list[dict[str, Any]]:
    rows = project.sql(
        "SELECT status, success, dry_run, writes, output, error_message, once_key, lock_key "
        "FROM managed_commands_commandexecution WHERE command_name = ? ORDER BY id",
        (name,),
    )
    keys = ("status", "success", "dry_run", "writes", "output", "error", "once_key", "lock_key")
    return [dict(zip(keys, row, strict=True)) | {"writes": _json(row[3])} for row in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_a_dry_run_changes_nothing_and_records_what_it_would_have_written(data):
    result = data.run("dry_fix", "--dry-run", "--mail", env=BATCHES)
    assert result.returncode == 0, result.stderr
    assert "dry_run=True option=True\nfixed\n" in result.stdout
    assert (
        "Dry run of 'dry_fix' rolled back: it would have written batchmodels_item "
        "(3 insert, 3 update, 1 delete), batchmodels_label (1 insert); 1 mail not sent."
    ) in result.stdout
    assert counts(data) == (0, 0)
    [row] = dry_rows(data, "dry_fix")
    assert (row["status"], bool(row["success"]), bool(row["dry_run"])) == ("dry_run", False, True)
    assert row["writes"]["rows"] == WOULD_WRITE
    assert (row["writes"]["mails"], row["writes"]["statements"]) == (1, 5)
    assert row["output"] == "dry_run=True option=True\nfixed\n"
    assert row["once_key"] is None and row["lock_key"] is None

    # Still pending: the real run runs, and does what the dry run said.
    listed = data.run("show_managed_commands", "--json", env=BATCHES)
    [entry] = [e for e in json.loads(listed.stdout) if e["name"] == "dry_fix"]
    assert (entry["state"], entry["last_status"], entry["last_dry_run"]) == (
        "pending",
        "dry_run",
        True,
    )
    real = data.run("dry_fix", env=BATCHES)
    assert real.returncode == 0, real.stderr
    assert "dry_run=False option=False" in real.stdout and "Dry run" not in real.stdout
    assert counts(data) == (2, 1)
    assert [r["status"] for r in dry_rows(data, "dry_fix")] == ["dry_run", "succeeded"]


def test_a_dry_run_never_meets_a_requirement(data):
    assert data.run("dry_fix", "--dry-run", env=BATCHES).returncode == 0
    refused = data.run("after_dry_fix", env=BATCHES)
    assert refused.returncode == 1
    assert "it requires 'dry_fix', which has not run successfully yet" in refused.stderr


def test_a_dry_run_of_a_done_command_is_skipped_unless_rerun(data):
    assert data.run("dry_fix", env=BATCHES).returncode == 0
    skipped = data.run("dry_fix", "--dry-run", env=BATCHES)
    assert skipped.returncode == 0
    assert "Skipped 'dry_fix': this run_once command already ran successfully" in skipped.stdout
    data.empty_batch_data()
    again = data.run("dry_fix", "--dry-run", "--rerun", env=BATCHES)
    assert again.returncode == 0, again.stderr
    assert counts(data) == (0, 0)
    assert [r["status"] for r in dry_rows(data, "dry_fix")] == ["succeeded", "dry_run"]
    # The success keeps the command done.
    assert data.run("dry_fix", env=BATCHES).stdout.startswith("Skipped 'dry_fix'")


def test_a_dry_run_that_breaks_a_foreign_key_fails_as_the_real_run_would(data):
    result = data.run("dry_fix", "--dry-run", "--break-fk", env=BATCHES)
    assert result.returncode == 1
    assert "IntegrityError" in result.stderr
    assert counts(data) == (0, 0)
    [row] = dry_rows(data, "dry_fix")
    assert (row["status"], bool(row["dry_run"])) == ("failed", True)
    assert row["error"].startswith("IntegrityError")
    assert row["once_key"] is None and row["lock_key"] is None
    # A failed dry run is no failure of the command: it is still plainly pending.
    listed = data.run("show_managed_commands", env=BATCHES)
    assert "[ ] dry_fix" in listed.stdout, listed.stdout


def test_ddl_is_refused_where_it_would_commit_and_rolled_back_elsewhere(data):
    result = data.run("dry_fix", "--dry-run", "--ddl", env=BATCHES)
    tables = data.tables(data.name)
    if data.backend == "mariadb":
        assert result.returncode == 1
        assert (
            "DryRunRefused: Dry run of 'dry_fix' refused 'CREATE TABLE dry_fix_ddl (id integer)' "
            "on database 'default': MariaDB commits implicitly before it"
        ) in result.stderr
        [row] = dry_rows(data, "dry_fix")
        assert row["status"] == "failed" and "commits implicitly" in row["error"]
    else:
        assert result.returncode == 0, result.stderr
    assert "dry_fix_ddl" not in tables
    assert counts(data) == (0, 0)


def test_a_commit_statement_is_refused_on_every_backend(data):
    result = data.run("dry_fix", "--dry-run", "--commit", env=BATCHES)
    assert result.returncode == 1
    assert "refused 'COMMIT'" in result.stderr
    assert "it would end the dry run's transaction and make its writes real" in result.stderr
    assert counts(data) == (0, 0)


def test_a_dry_run_takes_the_lock_so_it_never_overlaps_a_real_run(data, tmp_path):
    release = tmp_path / "release"  # the project's directory outlives this test
    real = data.spawn(
        "dry_fix", "--seconds", "60", env={**BATCHES, "MC_TEST_RELEASE": str(release)}
    )
    try:
        data.wait_until_started(real)
        waited = data.run("dry_fix", "--dry-run", env={**BATCHES, "MC_TEST_WAIT_TIMEOUT": "1"})
        assert waited.returncode == 3
        assert "is already running" in waited.stderr
    finally:
        release.touch()
        data.wait(real)
    assert real.returncode == 0
    assert counts(data) == (2, 1)


def test_only_commands_that_support_it_take_dry_run(project):
    result = project.run("once", "--dry-run", env=BATCHES)
    assert result.returncode == 2
    assert "unrecognized arguments: --dry-run" in result.stderr
    assert project.rows("once") == []


def test_a_dry_run_of_a_batch_loop_rolls_back_each_batch_and_saves_no_cursor(data):
    assert data.run("seed_items", "--count", "2500", env=BATCHES).returncode == 0
    result = data.run("backfill", "--dry-run", "--batch-size", "1000", env=BATCHES)
    assert result.returncode == 0, result.stderr
    assert "it would have written batchmodels_item (2,500 update)" in result.stdout
    untouched = data.sql(
        "SELECT COUNT(*) FROM batchmodels_item WHERE processed = 0", database=data.name
    )
    assert untouched[0][0] == 2500
    [row] = dry_rows(data, "backfill")
    assert row["status"] == "dry_run"
    assert row["writes"]["batches"] == 3 and row["writes"]["rows"] == {
        "batchmodels_item": {"UPDATE": 2500}
    }
    column = "`cursor`" if data.backend == "mariadb" else '"cursor"'
    [(cursor,)] = data.sql(
        f"SELECT {column} FROM managed_commands_commandexecution WHERE command_name = 'backfill'"
    )
    assert cursor is None
    # The real run starts from the beginning, not from anything the dry run saw.
    assert data.run("backfill", env=BATCHES).returncode == 0
    processed = data.sql(
        "SELECT COUNT(*) FROM batchmodels_item WHERE processed = 1", database=data.name
    )
    assert processed[0][0] == 2500
