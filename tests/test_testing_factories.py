"""``CommandExecutionFactory`` and its traits."""

from __future__ import annotations

import os

import pytest

from managed_commands.runs.claim import lock_key
from managed_commands.status import command_statuses
from managed_commands.testing.factories import CommandExecutionFactory

pytestmark = pytest.mark.django_db


def test_default_is_a_finished_success_that_ends_now():
    row = CommandExecutionFactory()
    assert (row.status, row.success, row.scope, row.duration) == ("succeeded", True, "", 1.0)
    assert row.command_name.startswith("command_")
    assert (row.finished_at - row.executed_at).total_seconds() == 1.0
    assert row.error_message == "" and row.lock_key is None


def test_failed():
    row = CommandExecutionFactory(command_name="sync", failed=True)
    assert (row.status, row.success) == ("failed", False)
    assert row.error_message == "CommandError: it failed"
    assert row.traceback.startswith("Traceback")


def test_running_looks_alive_and_holds_no_lock():
    row = CommandExecutionFactory(running=True)
    assert (row.status, row.success, row.finished_at, row.duration) == (
        "running",
        False,
        None,
        None,
    )
    assert row.pid == os.getpid() and row.process_token and row.lock_key is None


def test_holding_lock_is_running_with_the_commands_lock_key():
    row = CommandExecutionFactory(command_name="sync", holding_lock=True)
    assert row.status == "running" and row.lock_key == lock_key("sync", "")


def test_faked_is_a_success_that_did_not_run():
    row = CommandExecutionFactory(faked=True)
    assert (row.status, row.success, row.duration) == ("faked", True, 0.0)
    assert row.executed_at == row.finished_at


@pytest.mark.parametrize(
    ("trait", "message"),
    [
        ("interrupted", "Interrupted by SIGINT (KeyboardInterrupt)."),
        ("abandoned", "Abandoned: its process is no longer running."),
    ],
)
def test_other_endings(trait, message):
    row = CommandExecutionFactory(**{trait: True})
    assert (row.status, row.success, row.error_message) == (trait, False, message)


def test_rows_go_to_the_scope_of_a_run(settings):
    settings.MANAGED_COMMANDS = {"SCOPE": lambda connection: "tenant-a"}
    assert CommandExecutionFactory().scope == "tenant-a"


def test_resumable_is_interrupted_with_a_cursor():
    row = CommandExecutionFactory(command_name="backfill", resumable=True)
    assert (row.status, row.success) == ("interrupted", False)
    assert row.cursor == {"main": {"columns": ["pk"], "after": [100], "count": 100, "done": False}}
    assert (row.tick_count, row.tick_total) == (100, 200)


def test_resumable_takes_its_progress():
    row = CommandExecutionFactory(resumable=True, rows_done=0, rows_total=10)
    assert row.cursor["main"] == {"columns": ["pk"], "after": None, "count": 0, "done": False}
    assert (row.tick_count, row.tick_total) == (0, 10)


def test_the_dry_trait_builds_a_completed_dry_run_that_leaves_the_command_pending():
    row = CommandExecutionFactory(command_name="noop_once", run_once=True, dry=True)
    assert (row.status, row.success, row.dry_run, row.once_key) == ("dry_run", False, True, None)
    assert row.writes["rows"] == {}
    [status] = [s for s in command_statuses() if s.command.name == "noop_once"]
    assert (status.state, status.shown_state) == ("pending", "pending")
