"""The pytest plugin: ``run_managed_command`` and ``command_history``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from django.db import transaction
from django.test import override_settings

from managed_commands.models import CommandExecution
from managed_commands.runs import claim
from managed_commands.testing.assertions import assert_refused, assert_skipped, assert_succeeded


def test_run_managed_command_returns_the_row_and_the_output(run_managed_command):
    result = run_managed_command("once")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "once: done\n", "")
    assert result.name == "once"
    assert result.execution.status == "succeeded" and result.execution.output == "once: done\n"


def test_a_failure_in_a_test_stays_inside_the_test(run_managed_command, caplog):
    # A committed copy would leak into later tests: none is written, and the
    # log says the record rolls back with the test.
    watchers = list(claim._watchers)
    result = run_managed_command("fail")
    assert result.exit_code == 1 and result.execution.status == "failed"
    assert claim._watchers == watchers
    assert "inside a test's transaction on database 'default'" in caplog.text


def test_runs_are_recorded_inside_the_test_transaction(run_managed_command):
    assert transaction.get_connection().in_atomic_block
    run_managed_command("noop_managed")
    assert list(CommandExecution.objects.values_list("command_name", "status")) == [
        ("noop_managed", "succeeded")
    ]


def test_each_test_starts_from_an_empty_history(run_managed_command):
    # Runs in any order with the test above (pytest-randomly): its row was rolled back.
    assert CommandExecution.objects.count() == 0


def test_succeeded_history_makes_a_run_once_command_done(run_managed_command, command_history):
    row = command_history.succeeded("once")
    assert (row.status, row.success, row.run_once, row.app_label) == (
        "succeeded",
        True,
        True,
        "testapp",
    )
    assert_skipped(run_managed_command("once"))


def test_faked_history_meets_a_requirement(run_managed_command, command_history):
    command_history.faked("once")
    assert_refused(run_managed_command("needs_once"), missing=["noop_once"])
    command_history.succeeded("noop_once")
    assert_succeeded(run_managed_command("needs_once"))


def test_failed_history_does_not_meet_a_requirement(run_managed_command, command_history):
    command_history.failed("once")
    command_history.succeeded("noop_once")
    assert_refused(run_managed_command("needs_once"), missing=["once"])


def test_running_history_is_a_live_run_of_this_process(command_history):
    row = command_history.running("once")
    assert (row.status, row.success, row.finished_at, row.lock_key) == (
        "running",
        False,
        None,
        None,
    )
    assert row.pid == os.getpid()


@override_settings(MANAGED_COMMANDS={"WAIT_TIMEOUT": 0})
def test_a_run_holding_the_lock_makes_a_new_run_give_up(run_managed_command, command_history):
    holder = command_history.running("noop_managed", holding_lock=True)
    result = run_managed_command("noop_managed")
    assert result.exit_code == 3 and result.execution is None
    assert f"another run holds its lock (run #{holder.pk}, process {os.getpid()}" in result.stderr


def test_fields_can_be_given(command_history):
    row = command_history.succeeded("not_installed", output="done\n", duration=4.5)
    assert (row.run_once, row.app_label, row.output, row.duration) == (False, "", "done\n", 4.5)
    assert (row.finished_at - row.executed_at).total_seconds() == 4.5


@pytest.mark.processes
def test_the_plugin_loads_in_a_project_without_django_or_factory_boy(tmp_path):
    """pytest loads the plugin everywhere the package is installed: it must stay inert."""
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_plain():
                assert "managed_commands.testing.fixtures" in sys.modules
                assert sys.modules.get("factory") is None  # blocked, never imported
                assert "managed_commands.models" not in sys.modules
                assert "django.db.models" not in sys.modules
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # factory-boy absent: importing it fails; pytest-django off, Django not configured.
    runner = (
        "import sys; sys.modules['factory'] = None; import pytest; "
        "sys.exit(pytest.main(['-q', '-p', 'no:django', '-p', 'no:randomly']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", runner], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_resumable_history_is_continued_by_the_next_run(run_managed_command, command_history):
    row = command_history.resumable("once", rows_done=5, rows_total=8)
    assert (row.status, row.run_once, row.tick_count, row.tick_total) == (
        "interrupted",
        True,
        5,
        8,
    )
    assert row.cursor["main"]["after"] == [5]
