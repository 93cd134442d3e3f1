"""ManagedBaseCommand through call_command(), in process."""

from __future__ import annotations

import logging
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext, override_settings

from managed_commands.exceptions import InvalidDefinition, RequirementNotMet
from managed_commands.models import CommandExecution
from managed_commands.signals import command_finished, command_started
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db


def test_success_row_and_stringio_output():
    result = run_command("talk")
    assert result.exit_code == 0
    assert result.stdout == "stdout: café ✓ 数据\nreturned text\n"
    assert result.stderr == "stderr: careful\n"
    row = result.execution
    assert row.status == "succeeded" and row.success
    assert row.output == "stdout: café ✓ 数据\nprint: to sys.stdout\nreturned text\n"
    assert row.stderr.startswith("stderr: careful\nprint: to sys.stderr\n")
    assert row.app_label == "testapp"
    assert row.finished_at >= row.executed_at and row.duration >= 0
    assert row.lock_key is None and row.pid and row.hostname
    assert len(row.source_hash) == 64


def test_print_still_reaches_the_real_stdout_when_a_stream_is_given(capsys):
    out = StringIO()
    call_command("talk", stdout=out, stderr=StringIO())
    captured = capsys.readouterr()
    assert captured.out == "print: to sys.stdout\n"
    assert "print: to sys.stderr\n" in captured.err
    assert "stdout: café" not in captured.out


def test_without_streams_everything_goes_to_the_terminal(capsys):
    call_command("talk")
    captured = capsys.readouterr()
    assert captured.out == "stdout: café ✓ 数据\nprint: to sys.stdout\nreturned text\n"
    assert captured.err.startswith("stderr: careful\nprint: to sys.stderr\n")
    assert sys.stdout is not None and type(sys.stdout).__name__ != "TeeStream"


def test_command_error_propagates_unchanged_and_is_recorded():
    with pytest.raises(CommandError) as caught:
        call_command("fail", "--code", "5", stdout=StringIO())
    assert str(caught.value) == "it went wrong" and caught.value.returncode == 5
    row = CommandExecution.objects.get()
    assert (row.status, row.success) == ("failed", False)
    assert row.error_message == "CommandError: it went wrong"
    assert 'raise CommandError("it went wrong", returncode=code)' in row.traceback


def test_other_exceptions_propagate_unchanged():
    with pytest.raises(ValueError, match="the data is bad"):
        call_command("fail", "--crash", stdout=StringIO())
    assert CommandExecution.objects.get().error_message == "ValueError: the data is bad"


@pytest.mark.parametrize(
    ("code", "status"), [(0, "succeeded"), (None, "succeeded"), (2, "interrupted")]
)
def test_system_exit(code, status, monkeypatch):
    from tests.testapp.management.commands import exit_with

    monkeypatch.setattr(exit_with.sys, "exit", lambda c: (_ for _ in ()).throw(SystemExit(code)))
    with pytest.raises(SystemExit):
        call_command("exit_with", "0", stdout=StringIO())
    row = CommandExecution.objects.get()
    assert row.status == status and row.success is (status == "succeeded")


def test_keyboard_interrupt_is_recorded_as_interrupted(monkeypatch):
    from tests.testapp.management.commands import slow

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(slow, "hold", interrupted)
    with pytest.raises(KeyboardInterrupt):
        call_command("slow", stdout=StringIO())
    row = CommandExecution.objects.get()
    assert (row.status, row.success) == ("interrupted", False)
    assert row.error_message == "Interrupted by SIGINT (KeyboardInterrupt)."
    assert row.lock_key is None


def test_run_once_skips_with_a_notice_after_success():
    assert run_command("once").exit_code == 0
    skipped = run_command("once")
    assert skipped.exit_code == 0 and skipped.execution is None
    assert skipped.stdout.startswith(
        "Skipped 'once': this run_once command already ran successfully on "
    )
    assert CommandExecution.objects.filter(command_name="once").count() == 1


def test_run_once_quiet_at_verbosity_0():
    run_command("once")
    assert run_command("once", verbosity=0).stdout == ""


def test_run_once_runs_again_after_failure_and_rerun_is_forced():
    with pytest.raises(RuntimeError):
        run_command("once", fail=True)
    assert CommandExecution.objects.get().status == "failed"
    assert run_command("once").execution.status == "succeeded"
    forced = run_command("once", rerun=True).execution
    assert forced.forced and forced.status == "succeeded"


def test_requires_names_every_missing_command():
    result = run_command("needs_once")
    assert result.exit_code == 1 and isinstance(result.error, RequirementNotMet)
    assert "it requires 'once', 'noop_once', which have not run successfully yet" in result.stderr
    assert not CommandExecution.objects.filter(command_name="needs_once").exists()
    run_command("once")
    assert "it requires 'noop_once', which has not" in run_command("needs_once").stderr
    run_command("noop_once")
    assert run_command("needs_once").execution.success


def test_requires_migrations(unapplied_initial):
    run_command("noop_once")
    result = run_command("needs_schema")
    assert result.exit_code == 1
    assert result.stderr == (
        "RequirementNotMet: Cannot run 'needs_schema': it requires the migration "
        "'managed_commands.0001_initial', not applied on database 'default'. "
        "Run 'python manage.py migrate' first.\n"
    )


def test_bad_definition_is_a_clear_error(monkeypatch):
    from tests.testapp.management.commands import noop_managed

    monkeypatch.setattr(noop_managed.Command, "run_once", "yes")
    monkeypatch.setattr(noop_managed.Command, "requires", [3])
    with pytest.raises(InvalidDefinition) as caught:
        call_command("noop_managed")
    assert str(caught.value) == (
        "tests.testapp.management.commands.noop_managed.Command.run_once must be True or False, "
        "not 'yes'. tests.testapp.management.commands.noop_managed.Command.requires must be a "
        "list of command names (strings), not [3]."
    )


def test_signals_carry_the_row():
    seen = []

    def started(sender, command, execution, **kwargs):
        seen.append(("started", sender.__module__, execution.status))

    def finished(sender, command, execution, **kwargs):
        seen.append(("finished", sender.__module__, execution.status))

    command_started.connect(started)
    command_finished.connect(finished)
    try:
        run_command("noop_managed")
    finally:
        command_started.disconnect(started)
        command_finished.disconnect(finished)
    module = "tests.testapp.management.commands.noop_managed"
    assert seen == [("started", module, "running"), ("finished", module, "succeeded")]


def test_a_failing_signal_receiver_does_not_break_the_run(caplog):
    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    command_started.connect(broken)
    try:
        assert run_command("noop_managed").execution.success
    finally:
        command_started.disconnect(broken)
    assert "A receiver of managed_commands signal failed" in caplog.text


@override_settings(MANAGED_COMMANDS={"OUTPUT_LIMIT": 100})
def test_stored_output_keeps_head_and_tail():
    result = run_command("noisy", kind="long-line", megabytes=1)
    assert len(result.stdout) == 1_000_001
    stored = result.execution.output
    assert stored.startswith(
        "x" * 50 + "\n[... managed_commands: 999901 characters not stored ...]\n"
    )
    assert stored.endswith("x" * 49 + "\n")


@override_settings(MANAGED_COMMANDS={"CAPTURE_LOGS": "WARNING"})
def test_log_records_can_be_captured(caplog):
    with caplog.at_level(logging.WARNING):
        row = run_command("talk").execution
    assert "WARNING testapp.talk: a log record\n" in row.stderr


def test_unjsonable_and_secret_options():
    import datetime

    row = run_command(
        "with_options", "a", password="hunter2", day=datetime.date(2026, 1, 2)
    ).execution
    assert row.parameters["options"]["password"] == "********"
    assert row.parameters["options"]["day"] == "2026-01-02"
    assert row.parameters["options"]["names"] == ["a"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("managed", "extra_allowed"),
    # A pending run_once run: its INSERT and UPDATE (#12); with requires, one read first.
    [("noop_managed", 2), ("noop_once", 2), ("needs_once", 3)],
)
def test_queries_added_to_a_plain_command(managed, extra_allowed):
    run_command("once")
    run_command("noop_once") if managed == "needs_once" else None
    if managed == "needs_once":
        CommandExecution.objects.filter(command_name="needs_once").delete()
    with CaptureQueriesContext(connection) as plain:
        call_command("noop_plain")
    with CaptureQueriesContext(connection) as tracked:
        call_command(managed, stdout=StringIO())
    added = len(tracked.captured_queries) - len(plain.captured_queries)
    assert added <= extra_allowed <= 5, [q["sql"] for q in tracked.captured_queries]
    assert all(len(c.queries_log) == 0 for c in connections.all() if c.alias != "default")
