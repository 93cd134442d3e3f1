"""Claims and takeovers, in process (real processes race in test_concurrency.py)."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test.utils import override_settings
from django.utils import timezone

from managed_commands.exceptions import LockHeld
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs.claim import lock_key
from managed_commands.testing.utils import run_command
from tests.testapp.management.commands import noop_managed

pytestmark = pytest.mark.django_db


def live_holder(name, **fields):
    return CommandExecution.objects.create(command_name=name, lock_key=lock_key(name, ""), **fields)


def test_a_holder_on_another_host_past_its_lease_is_taken_over():
    stale = live_holder(
        "noop_managed",
        hostname="gone-host",
        pid=1,
        heartbeat_at=timezone.now() - datetime.timedelta(minutes=5),
    )
    result = run_command("noop_managed")
    assert result.execution.success
    stale.refresh_from_db()
    assert stale.status == "abandoned" and stale.lock_key is None and not stale.success
    assert stale.error_message.startswith(
        "Abandoned: no heartbeat from process 1 on gone-host for "
    )


@override_settings(MANAGED_COMMANDS={"WAIT_TIMEOUT": 0.2})
def test_a_live_holder_on_another_host_makes_a_start_give_up():
    live_holder("noop_managed", hostname="busy-host", pid=42, heartbeat_at=timezone.now())
    err = StringIO()
    with pytest.raises(LockHeld) as caught:
        call_command("noop_managed", stderr=err)
    assert caught.value.returncode == 3
    assert "process 42 on host busy-host, running since" in str(caught.value)
    assert "Gave up after waiting 0.2 s" in str(caught.value)
    assert err.getvalue().startswith("'noop_managed' is already running (run #")


@override_settings(MANAGED_COMMANDS={"WAIT_TIMEOUT": 0.2, "LEASE_SECONDS": 60})
def test_a_command_with_a_lease_of_its_own_is_judged_by_it(monkeypatch):
    monkeypatch.setattr(noop_managed.Command, "lease_seconds", 300)
    silent = timezone.now() - datetime.timedelta(seconds=120)  # past 60 s, within 300 s
    live_holder("noop_managed", hostname="paused-host", pid=42, heartbeat_at=silent)
    with pytest.raises(LockHeld):
        call_command("noop_managed", stderr=StringIO())
    monkeypatch.setattr(noop_managed.Command, "lease_seconds", None)
    assert run_command("noop_managed").execution.success


def test_run_once_waiter_skips_when_the_holder_succeeded_meanwhile(monkeypatch):
    # A live run_once run holds its command's once_key too, as its claim set it.
    holder = live_holder(
        "noop_once",
        once_key=lock_key("noop_once", ""),
        hostname="busy-host",
        pid=42,
        heartbeat_at=timezone.now(),
    )

    def finish_holder(seconds):
        CommandExecution.objects.filter(pk=holder.pk).update(
            lock_key=None, status="succeeded", success=True
        )

    monkeypatch.setattr("managed_commands.runs.claim.time.sleep", finish_holder)
    result = run_command("noop_once")
    assert result.exit_code == 0 and result.execution is None
    assert result.stdout.startswith("Skipped 'noop_once'")
    assert CommandExecution.objects.count() == 1


def test_a_command_calling_itself_is_refused_at_once(monkeypatch):
    from tests.testapp.management.commands import slow

    monkeypatch.setattr(slow, "hold", lambda seconds: call_command("slow", seconds=0))
    with pytest.raises(LockHeld, match="a command cannot call itself"):
        call_command("slow", stdout=StringIO())
    assert CommandExecution.objects.get().status == "failed"


def test_allow_concurrent_takes_no_lock():
    assert run_command("concurrent").execution.lock_key is None
    assert CommandExecution.objects.get().status == "succeeded"


def test_a_claim_whose_reply_was_lost_is_found_not_inserted_twice(monkeypatch):
    # The INSERT landed, then the connection broke before its reply came back.
    landed = []
    insert = ExecutionRecorder.claim

    def reply_lost(self, **fields):
        row = insert(self, **fields)
        if not landed:
            landed.append(row)
            raise OperationalError("server closed the connection unexpectedly")
        return row

    monkeypatch.setattr(ExecutionRecorder, "claim", reply_lost)
    monkeypatch.setattr(ExecutionRecorder, "drop_broken_connection", lambda self: True)
    result = run_command("noop_once")
    assert result.execution.success and result.execution.pk == landed[0].pk
    assert CommandExecution.objects.filter(command_name="noop_once").count() == 1
