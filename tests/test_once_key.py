"""``once_key``: the unique key a done run_once command holds, so the claim's
INSERT itself refuses a second run (#12)."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from managed_commands.formatting import local_time
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs.claim import lock_key
from managed_commands.status import command_statuses
from managed_commands.testing.factories import CommandExecutionFactory
from managed_commands.testing.utils import run_command
from managed_commands.utils import record_command_execution
from tests.testapp.management.commands import once

pytestmark = pytest.mark.django_db

Status = CommandExecution.Status
KEY = lock_key("once", "")


def holder_of_once_key(name="once", scope=""):
    return CommandExecution.objects.filter(once_key=lock_key(name, scope)).first()


def statements(name, **options):
    with CaptureQueriesContext(connection) as captured:
        result = run_command(name, **options)
    # A union of seeks starts with "(SELECT".
    return result, [
        query["sql"].lstrip("(").split(None, 1)[0].upper() for query in captured.captured_queries
    ]


# -- the statements of a run ------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_pending_run_once_run_sends_an_insert_and_an_update():
    result, sent = statements("noop_once")
    assert result.exit_code == 0 and result.execution.once_key == lock_key("noop_once", "")
    # run_command() reads the finished row back for the test: not part of the run.
    assert sent[:2] == ["INSERT", "UPDATE"] and sent[2:] == ["SELECT"]


@pytest.mark.django_db(transaction=True)
def test_a_done_run_once_run_sends_the_refused_insert_and_one_read():
    first = run_command("noop_once").execution
    result, sent = statements("noop_once")
    assert result.exit_code == 0 and result.execution is None
    # MySQLdb knows no text of a statement that failed: Django logs it as None.
    assert sent in (["INSERT", "SELECT"], ["NONE", "SELECT"])
    assert result.stdout == (
        f"Skipped 'noop_once': this run_once command already ran successfully on "
        f"{local_time(first.executed_at)}. "
        "Pass --rerun to run it again.\n"
    )
    assert CommandExecution.objects.filter(command_name="noop_once").count() == 1


@pytest.mark.django_db(transaction=True)
def test_with_requires_one_read_comes_first_for_the_requires_only():
    run_command("once")
    run_command("noop_once")
    result, sent = statements("needs_once")
    assert result.exit_code == 0 and result.execution.success
    assert sent == ["SELECT", "INSERT", "UPDATE", "SELECT"]


def test_inside_a_transaction_the_refused_insert_leaves_it_usable():
    run_command("once")
    assert run_command("once").stdout.startswith("Skipped 'once'")
    # The transaction of the test is still usable after the refused insert.
    assert CommandExecution.objects.filter(command_name="once").count() == 1


def test_key_holders_reads_the_rows_holding_either_key():
    done = CommandExecution.objects.create(command_name="once", success=True, once_key=KEY)
    forced = CommandExecution.objects.create(command_name="once", forced=True, lock_key=KEY)
    CommandExecution.objects.create(command_name="slow", lock_key=lock_key("slow", ""))
    recorder = ExecutionRecorder("default")
    assert {row.pk for row in recorder.key_holders(KEY, once=True)} == {done.pk, forced.pk}
    assert [row.pk for row in recorder.key_holders(KEY, once=False)] == [forced.pk]
    assert recorder.key_holders(lock_key("never", ""), once=True) == []


def test_key_holders_builds_rows_as_the_orm_does():
    row = CommandExecution.objects.create(
        command_name="once",
        success=True,
        run_once=True,
        once_key=KEY,
        parameters={"args": ["a"], "options": {"n": 1.5, "flag": True}},
        finished_at=timezone.now(),
        duration=0.25,
        pid=7,
    )
    (read,) = ExecutionRecorder("default").key_holders(KEY, once=True)
    expected = CommandExecution.objects.get(pk=row.pk)
    fields = [f.attname for f in CommandExecution._meta.concrete_fields]
    assert [getattr(read, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert read._state.db == "default" and not read._state.adding


# -- what keeps and what clears the key -------------------------------------------
def test_a_success_keeps_the_key_and_a_failure_clears_it():
    with pytest.raises(RuntimeError):
        run_command("once", fail=True)
    failed = CommandExecution.objects.get()
    assert (failed.status, failed.once_key, failed.lock_key) == ("failed", None, None)
    ran = run_command("once").execution
    assert (ran.status, ran.once_key, ran.lock_key) == ("succeeded", KEY, None)
    assert run_command("once").execution is None


def test_a_failure_recorded_without_its_output_still_clears_the_key(monkeypatch):
    real_finish, attempts = ExecutionRecorder.finish, []

    def first_attempt_fails(self, execution, lock_key, **fields):
        attempts.append(dict(fields))
        if len(attempts) == 1:
            raise DatabaseError("cannot store this output")
        return real_finish(self, execution, lock_key, **fields)

    monkeypatch.setattr(ExecutionRecorder, "finish", first_attempt_fails)
    with pytest.raises(RuntimeError):
        run_command("once", fail=True)
    row = CommandExecution.objects.get()
    assert row.status == "failed" and row.output.startswith("[managed_commands: output not")
    assert len(attempts) == 2 and row.once_key is None


def test_an_interruption_clears_the_key(monkeypatch):
    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(once, "hold", interrupted)
    with pytest.raises(KeyboardInterrupt):
        call_command("once", stdout=StringIO())
    row = CommandExecution.objects.get()
    assert (row.status, row.once_key, row.lock_key) == ("interrupted", None, None)
    monkeypatch.undo()
    assert run_command("once").execution.success


def test_a_dead_holder_is_abandoned_with_both_keys_freed():
    dead = CommandExecution.objects.create(
        command_name="once",
        lock_key=KEY,
        once_key=KEY,
        hostname="gone-host",
        pid=1,
        heartbeat_at=timezone.now() - datetime.timedelta(minutes=5),
    )
    assert run_command("once").execution.once_key == KEY
    dead.refresh_from_db()
    assert (dead.status, dead.lock_key, dead.once_key) == ("abandoned", None, None)


def test_a_stray_key_on_a_failed_row_is_freed_and_the_command_runs():
    stray = CommandExecution.objects.create(
        command_name="once", status=Status.FAILED, once_key=KEY, finished_at=timezone.now()
    )
    assert run_command("once").execution.success
    stray.refresh_from_db()
    assert stray.once_key is None and holder_of_once_key().status == "succeeded"


def test_rerun_is_forced_and_leaves_the_key_where_it_is():
    done = run_command("once").execution
    forced = run_command("once", rerun=True).execution
    assert forced.forced and forced.success and forced.once_key is None
    assert holder_of_once_key().pk == done.pk
    with pytest.raises(RuntimeError):
        run_command("once", rerun=True, fail=True)
    assert holder_of_once_key().pk == done.pk
    assert run_command("once").stdout.startswith("Skipped 'once'")


def test_a_forced_success_takes_the_free_key_so_the_command_is_done():
    with pytest.raises(RuntimeError):
        run_command("once", fail=True)
    forced = run_command("once", rerun=True).execution
    assert forced.forced and forced.once_key == KEY and holder_of_once_key().pk == forced.pk
    assert run_command("once").execution is None
    assert {s.command.name: s.state for s in command_statuses()}["once"] == "done"
    with pytest.raises(RuntimeError):  # a failed rerun frees no key it does not hold
        run_command("once", rerun=True, fail=True)
    assert holder_of_once_key().pk == forced.pk


def test_rerun_waits_for_a_live_run_once_holder_instead_of_skipping(settings):
    settings.MANAGED_COMMANDS = {"WAIT_TIMEOUT": 0.1}
    CommandExecution.objects.create(
        command_name="once",
        lock_key=KEY,
        once_key=KEY,
        pid=42,
        hostname="busy-host",
        heartbeat_at=timezone.now(),
    )
    assert run_command("once", rerun=True).exit_code == 3
    assert run_command("once").exit_code == 3


# -- faked, manual and factory rows -----------------------------------------------
def test_fake_takes_the_key_and_a_second_fake_records_without_it():
    recorder = ExecutionRecorder("default")
    faked = recorder.record_faked("once", "")
    assert (faked.status, faked.once_key) == ("faked", KEY)
    again = recorder.record_faked("once", "")
    assert again.once_key is None
    assert run_command("once").stdout.startswith("Skipped 'once'")


def test_run_pending_commands_fake_marks_done_for_the_claim():
    run_command("run_pending_commands", "--fake", "once")
    assert holder_of_once_key().status == "faked"
    assert run_command("once").execution is None


def test_manual_record_of_a_run_once_success_takes_the_key_if_free():
    assert record_command_execution("legacy_fix", run_once=False).once_key is None
    assert record_command_execution("legacy_fix", success=False, run_once=True).once_key is None
    first = record_command_execution("legacy_fix", run_once=True)
    assert first.once_key == lock_key("legacy_fix", "")
    assert record_command_execution("legacy_fix", run_once=True).once_key is None


def test_factory_success_of_a_run_once_command_makes_it_done():
    row = CommandExecutionFactory(command_name="once", run_once=True)
    second = CommandExecutionFactory(command_name="once", run_once=True)
    assert (row.once_key, second.once_key) == (KEY, None)
    assert run_command("once").execution is None


@pytest.mark.parametrize(
    ("fields", "holds"),
    [
        ({"run_once": True}, True),
        ({"run_once": True, "faked": True}, True),
        ({"run_once": True, "holding_lock": True}, True),
        ({"run_once": True, "forced": True}, True),  # a forced success takes it when free
        ({"run_once": True, "forced": True, "holding_lock": True}, False),
        ({"run_once": True, "failed": True}, False),
        ({"run_once": True, "running": True}, False),
        ({"run_once": True, "once_key": None}, False),
        ({}, False),
    ],
)
def test_factory_rows_hold_the_key_where_a_real_run_would(fields, holds):
    row = CommandExecutionFactory(command_name="once", **fields)
    assert (row.once_key == KEY) is holds
    assert bool(CommandExecutionFactory(command_name="once", once_key=None).once_key) is False


# -- pruning ----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_pruning_keeps_the_row_holding_the_key_behind_a_newer_forced_success():
    old = timezone.now() - datetime.timedelta(days=90)
    done = CommandExecutionFactory(command_name="once", run_once=True, executed_at=old)
    forced = CommandExecutionFactory(
        command_name="once",
        run_once=True,
        forced=True,
        executed_at=old + datetime.timedelta(days=1),
    )
    assert done.once_key == KEY
    run_command("prune_command_history", days=30)
    assert set(CommandExecution.objects.values_list("pk", flat=True)) == {done.pk, forced.pk}
    assert run_command("once").execution is None
