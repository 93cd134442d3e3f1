"""``CommandExecution``: ``success`` is what its ``status`` says, whoever wrote the row."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from managed_commands import tasks
from managed_commands.base import ManagedBaseCommand
from managed_commands.models import CommandExecution
from managed_commands.recorder import history_recorder
from managed_commands.status import recover_gone
from managed_commands.testing.factories import CommandExecutionFactory
from managed_commands.testing.utils import run_command
from managed_commands.utils import record_command_execution

pytestmark = pytest.mark.django_db(transaction=True)
Status = CommandExecution.Status
TASKS_API = next(
    (name for name in ("django.tasks", "django_tasks") if importlib.util.find_spec(name)), None
)


class Seen(ManagedBaseCommand):
    """Notes how its own row stands while it runs."""

    seen: list[tuple[str, bool]] = []

    def handle(self, *args: Any, **options: Any) -> None:
        row = CommandExecution.objects.get(status=Status.RUNNING)
        self.seen.append((row.status, row.success))


class Stopped(ManagedBaseCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        raise KeyboardInterrupt


class Dry(ManagedBaseCommand):
    supports_dry_run = True

    def handle(self, *args: Any, **options: Any) -> None:
        pass


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_succeeds_when_it_succeeded_or_was_faked():
    assert {status for status in Status if CommandExecution.success_of(status)} == {
        Status.SUCCEEDED,
        Status.FAKED,
    }


def test_every_writer_sets_success_as_the_status_says():
    # Runs: a success, a failure, an interruption, a dry run, and a run seen while it runs.
    run_command("noop_once")
    run_command("fail")
    with pytest.raises(KeyboardInterrupt):
        run_command(Stopped())
    run_command(Dry(), dry_run=True)
    Seen.seen.clear()
    run_command(Seen())
    # A run gone (its process died) and one closed by the deploy step's --fake after
    # its outcome was lost, then the faked run itself.
    CommandExecutionFactory(
        command_name="slow", holding_lock=True, pid=dead_pid(), process_token="gone"
    )
    recover_gone()
    CommandExecutionFactory(
        command_name="once", run_once=True, holding_lock=True, finished_at=timezone.now()
    )
    run_command("run_pending_commands", fake=["once"])
    # A queued run whose task could not be sent, closed failed.
    if TASKS_API:
        dummy = f"{TASKS_API}.backends.dummy.DummyBackend"
        with override_settings(TASKS={"default": {"BACKEND": dummy, "QUEUES": []}}):
            queued = tasks.enqueue_command("noop_managed")
            tasks.enqueue_command("talk")
        history_recorder().close_holder(queued, Status.FAILED, "Could not enqueue its task.")
    # The manual API and the testing kit's factory, every trait.
    record_command_execution("legacy_fix", success=True)
    record_command_execution("legacy_fix", success=False)
    for trait in ("failed", "running", "faked", "interrupted", "abandoned", "dry", "resumable"):
        CommandExecutionFactory(command_name=f"made_{trait}", **{trait: True})
    CommandExecutionFactory(command_name="made_succeeded")

    written = {*CommandExecution.objects.values_list("status", "success"), *Seen.seen}
    statuses = set(Status) if TASKS_API else set(Status) - {Status.QUEUED}
    assert written == {(status, CommandExecution.success_of(status)) for status in statuses}
