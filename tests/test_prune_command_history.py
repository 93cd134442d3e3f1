"""``prune_command_history``: old runs go, no command's done state does."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from managed_commands.models import CommandExecution
from managed_commands.status import command_statuses
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db(transaction=True)

Status = CommandExecution.Status


def run(name, days_ago, status=Status.SUCCEEDED, scope="", **fields):
    started = timezone.now() - datetime.timedelta(days=days_ago)
    return CommandExecution.objects.create(
        command_name=name,
        scope=scope,
        status=status,
        success=status in (Status.SUCCEEDED, Status.FAKED),
        executed_at=started,
        **fields,
    )


def remaining():
    return sorted(
        (row.command_name, row.scope, row.status, round((timezone.now() - row.executed_at).days))
        for row in CommandExecution.objects.all()
    )


def test_deletes_old_runs_but_keeps_each_commands_newest_success():
    run("noop_once", 100)
    run("noop_once", 90)  # the newest success of a run_once command: kept
    run("noop_once", 80, Status.FAILED)  # a later failed --rerun: deleted
    run("slow", 70)
    run("slow", 60)  # kept too: a requires on a repeatable command needs a success
    run("fail", 50, Status.FAILED)
    run("once", 40, Status.FAKED)  # a faked run is a success: kept
    run("noop_once", 95, scope="tenant-b")  # scopes are kept apart
    run("slow", 60, Status.RUNNING, lock_key="k")  # still holding its lock: kept
    run("noop_managed", 3)  # recent: kept
    before = {s.command.name: s.state for s in command_statuses()}
    result = run_command("prune_command_history", days=30)
    assert result.stdout == (
        "Deleted 4 runs older than 30 days (the newest successful run of each command is kept).\n"
    )
    assert remaining() == [
        ("noop_managed", "", "succeeded", 3),
        ("noop_once", "", "succeeded", 90),
        ("noop_once", "tenant-b", "succeeded", 95),
        ("once", "", "faked", 40),
        ("slow", "", "running", 60),
        ("slow", "", "succeeded", 60),
    ]
    assert {s.command.name: s.state for s in command_statuses()} == before


def test_keeps_the_run_a_pending_batch_loop_resumes_from():
    cursor = {"main": {"columns": ["pk"], "after": [1900], "count": 1900, "done": False}}
    run("backfill", 90, Status.INTERRUPTED, cursor=cursor)  # an older position: deleted
    run("backfill", 80, Status.FAILED, cursor=cursor)  # resumed by the next start: kept
    run("backfill", 70, Status.FAILED)  # a start that crashed before its loop: deleted
    run("backfill", 60, Status.ABANDONED)  # one killed before its loop: deleted
    run("done_loop", 90, Status.INTERRUPTED, cursor=cursor)  # a success followed: deleted
    run("done_loop", 80, cursor={"main": {**cursor["main"], "done": True}})
    result = run_command("prune_command_history", days=30)
    assert result.stdout.startswith("Deleted 4 runs older than 30 days")
    assert remaining() == [("backfill", "", "failed", 80), ("done_loop", "", "succeeded", 80)]


def test_same_start_time_keeps_exactly_one_success():
    first = run("noop_once", 10)
    CommandExecution.objects.create(
        command_name="noop_once",
        status=Status.SUCCEEDED,
        success=True,
        executed_at=first.executed_at,
    )
    run_command("prune_command_history", days=0)
    assert CommandExecution.objects.count() == 1


def test_dry_run_counts_and_deletes_nothing():
    run("slow", 70)
    run("slow", 60)
    result = run_command("prune_command_history", days=30, dry_run=True)
    assert result.stdout == (
        "Would delete 1 run older than 30 days "
        "(the newest successful run of each command is kept).\n"
    )
    assert CommandExecution.objects.count() == 2


def test_negative_days_is_a_clear_error():
    result = run_command("prune_command_history", days=-1)
    assert (result.exit_code, result.stderr) == (
        1,
        "CommandError: --days must be 0 or more, not -1.\n",
    )


def test_deletes_in_batches_until_nothing_old_is_left():
    started = timezone.now() - datetime.timedelta(days=10)
    CommandExecution.objects.bulk_create(
        CommandExecution(command_name="fail", status=Status.FAILED, executed_at=started)
        for _ in range(2500)
    )
    assert run_command("prune_command_history", days=1).stdout.startswith("Deleted 2500 runs ")
    assert CommandExecution.objects.count() == 0
