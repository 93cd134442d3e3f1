"""Managed commands on task workers (``managed_commands.tasks``), with Django's own
in-process backends: ``ImmediateBackend`` runs a task at once, ``DummyBackend``
keeps it until the test runs it as a worker would.

The end-to-end tests with real ``db_worker`` processes are in
``test_task_workers.py``.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import logging
import re
import sys
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from managed_commands import tasks
from managed_commands.exceptions import LockHeld
from managed_commands.models import CommandExecution
from managed_commands.runs.claim import lock_key
from managed_commands.status import command_statuses
from managed_commands.testing.factories import CommandExecutionFactory

API = next(
    (name for name in ("django.tasks", "django_tasks") if importlib.util.find_spec(name)), None
)
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(API is None, reason="needs django.tasks (Django 6.0+) or django-tasks"),
]
Status = CommandExecution.Status
DUMMY = override_settings(
    TASKS={"default": {"BACKEND": f"{API}.backends.dummy.DummyBackend", "QUEUES": []}}
)


def backend():
    return importlib.import_module(API).task_backends["default"]


def deliver(result):
    """Run a task the DummyBackend kept, as a worker would."""
    context = importlib.import_module(f"{API}.base").TaskContext(task_result=result)
    return result.task.call(context, *result.args, **result.kwargs)


def rows(name=None):
    found = CommandExecution.objects.order_by("pk")
    return list(found.filter(command_name=name) if name else found)


def test_an_enqueued_run_once_command_runs_on_the_worker_and_is_recorded():
    row = tasks.enqueue_command("with_options", "a", "b", "--count", "2")
    assert row.status == Status.QUEUED
    [run] = rows("with_options")
    assert run.pk == row.pk and run.status == Status.SUCCEEDED
    assert run.output == "names=['a', 'b'] count=2\n" and run.duration is not None
    assert run.task_id and run.hostname and run.pid
    assert run.enqueued_at <= run.executed_at
    assert run.origin["trigger"] == "enqueue_command" and run.origin["worker"]


def test_a_second_enqueue_of_a_done_run_once_command_enqueues_nothing(capsys):
    assert tasks.enqueue_command("noop_once").status == Status.QUEUED
    assert tasks.enqueue_command("noop_once") is None
    assert "Skipped 'noop_once': this run_once command already ran successfully" in (
        capsys.readouterr().out
    )
    assert [r.status for r in rows("noop_once")] == [Status.SUCCEEDED]


@DUMMY
def test_a_queued_run_holds_the_claim_until_a_worker_runs_it():
    row = tasks.enqueue_command("noop_once")
    assert row.status == Status.QUEUED and row.lock_key and row.once_key
    [result] = backend().results
    assert CommandExecution.objects.get(pk=row.pk).task_id == str(result.id)
    with pytest.raises(LockHeld, match=r"run #\d+, enqueued for a task worker on "):
        tasks.enqueue_command("noop_once")
    with override_settings(MANAGED_COMMANDS={"WAIT_TIMEOUT": 0.1}), pytest.raises(LockHeld):
        call_command("noop_once")
    [status] = [s for s in command_statuses() if s.command.name == "noop_once"]
    assert status.shown_state == "queued" and not status.failed_last
    assert deliver(result) == {"execution_id": row.pk, "status": "succeeded", "started": True}
    # A second delivery of the same task starts nothing.
    assert deliver(result) == {"execution_id": row.pk, "status": "succeeded", "started": False}
    assert [r.status for r in rows("noop_once")] == [Status.SUCCEEDED]


@DUMMY
def test_a_failure_on_the_worker_is_the_runs_row_and_the_tasks_return_value():
    row = tasks.enqueue_command("fail")
    [result] = backend().results
    assert deliver(result) == {"execution_id": row.pk, "status": "failed", "started": True}
    failed = CommandExecution.objects.get(pk=row.pk)
    assert failed.lock_key is None and failed.error_message == "CommandError: it went wrong"


def test_bad_arguments_are_refused_at_enqueue_and_nothing_is_recorded():
    with pytest.raises(CommandError, match="invalid int value: 'many'"):
        tasks.enqueue_command("with_options", "--count", "many")
    with pytest.raises(CommandError, match="Unknown option"):
        tasks.enqueue_command("with_options", colour="red")
    with pytest.raises(CommandError, match="travel to the worker as JSON"):
        tasks.enqueue_command("with_options", day=datetime.date(2026, 1, 1))
    with pytest.raises(CommandError, match="no installed app has a command by that name"):
        tasks.enqueue_command("no_such_command")
    with pytest.raises(CommandError, match="is not a managed command"):
        tasks.enqueue_command("noop_plain")
    assert rows() == []


def test_without_a_tasks_api_enqueue_says_what_to_install(monkeypatch):
    monkeypatch.setattr(tasks, "tasks_api", lambda: None)
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'managed-commands\[tasks\]'"):
        tasks.enqueue_command("noop_once")
    assert rows() == []


@DUMMY
def test_a_queued_run_never_started_is_taken_over_after_the_queue_timeout():
    stale = tasks.enqueue_command("noop_once")
    CommandExecution.objects.filter(pk=stale.pk).update(
        enqueued_at=timezone.now() - datetime.timedelta(hours=2)
    )
    fresh = tasks.enqueue_command("noop_once")
    abandoned = CommandExecution.objects.get(pk=stale.pk)
    assert abandoned.status == Status.ABANDONED
    assert "never started by a worker (QUEUE_TIMEOUT 3600 s)" in abandoned.error_message
    late, current = backend().results
    # The late delivery of the abandoned run starts nothing; the new one runs.
    assert deliver(late)["started"] is False
    assert deliver(current) == {"execution_id": fresh.pk, "status": "succeeded", "started": True}


def test_run_pending_commands_enqueue_runs_the_chain_in_order():
    out = io.StringIO()
    call_command("run_pending_commands", "--enqueue", stdout=out)
    assert out.getvalue().startswith("Enqueued ")
    done = [r.command_name for r in rows() if r.status == Status.SUCCEEDED]
    # needs_once requires once and noop_once; needs_schema requires noop_once.
    assert done.index("needs_once") > max(done.index("once"), done.index("noop_once"))
    assert done.index("needs_schema") > done.index("noop_once")
    assert all(r.origin["trigger"] == "run_pending_commands --enqueue" for r in rows())
    again = io.StringIO()
    call_command("run_pending_commands", "--enqueue", stdout=again)
    assert again.getvalue() == "No pending run_once commands.\n"


@DUMMY
def test_each_task_of_a_chain_enqueues_what_became_runnable():
    out = io.StringIO()
    call_command("run_pending_commands", "--enqueue", stdout=out)
    assert "will be enqueued as what they require succeed: needs_schema, needs_once" in (
        out.getvalue()
    )
    first = {r.args[1] for r in backend().results}
    assert first == {"noop_once", "once"}
    for result in list(backend().results):
        deliver(result)
    second = [r.args[1] for r in backend().results[2:]]
    assert sorted(second) == ["needs_once", "needs_schema"]
    for result in backend().results[2:]:
        deliver(result)
    assert {r.command_name for r in rows() if r.status == Status.SUCCEEDED} == {
        "noop_once",
        "once",
        "needs_once",
        "needs_schema",
    }


@override_settings(
    TASKS={
        alias: {"BACKEND": f"{API}.backends.dummy.DummyBackend", "QUEUES": []}
        for alias in ("default", "nightly_workers")
    }
)
def test_a_chain_enqueues_what_became_runnable_on_its_own_queue_and_backend():
    call_command(
        "run_pending_commands",
        "--enqueue",
        "--queue-name=nightly",
        "--backend=nightly_workers",
        stdout=io.StringIO(),
    )
    chain = importlib.import_module(API).task_backends["nightly_workers"]
    for result in list(chain.results):
        deliver(result)
    # noop_once and once first; needs_once and needs_schema once those succeeded.
    assert sorted(r.args[1] for r in chain.results[2:]) == ["needs_once", "needs_schema"]
    assert {(r.task.backend, r.task.queue_name) for r in chain.results} == {
        ("nightly_workers", "nightly")
    }
    assert backend().results == []


def test_enqueue_is_refused_with_plan_or_fake():
    with pytest.raises(CommandError, match="leave out --plan, --fake and --all-tenants"):
        call_command("run_pending_commands", "--enqueue", "--plan")


@DUMMY
def test_a_threaded_worker_keeps_its_sys_stdout_and_the_run_keeps_its_output():
    tasks.enqueue_command("talk")
    [result] = backend().results
    seen = []

    def work():
        before = sys.stdout
        deliver(result)
        seen.append(sys.stdout is before)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen == [True]
    [run] = rows("talk")
    # What the command writes to its own streams is captured; print() is not
    # (sys.stdout is every thread's).
    assert run.status == Status.SUCCEEDED and "stdout: café" in run.output
    assert "print: to sys.stdout" not in run.output


def test_show_managed_commands_marks_a_queued_run_with_its_age():
    CommandExecutionFactory(
        command_name="once",
        run_once=True,
        status=Status.QUEUED,
        success=False,
        enqueued_at=timezone.now() - datetime.timedelta(minutes=3),
    )
    out = io.StringIO()
    call_command("show_managed_commands", stdout=out)
    [line] = [line for line in out.getvalue().splitlines() if " once " in f"{line} "]
    assert line.startswith(" [Q] once ")
    assert "queued for a task worker since " in line and "(3 min 00 s ago)" in line


def test_show_managed_commands_check_recovers_a_run_no_worker_started():
    lost = CommandExecutionFactory(
        command_name="once",
        run_once=True,
        status=Status.QUEUED,
        success=False,
        lock_key=lock_key("once", ""),
        enqueued_at=timezone.now() - datetime.timedelta(hours=2),
    )
    waiting = CommandExecutionFactory(
        command_name="noop_once",
        run_once=True,
        status=Status.QUEUED,
        success=False,
        lock_key=lock_key("noop_once", ""),
        enqueued_at=timezone.now(),
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="pending"):
        call_command("show_managed_commands", "--check", stdout=io.StringIO(), stderr=err)
    assert re.match(
        f"Recovered run #{lost.pk} of 'once': Abandoned: enqueued 720[0-9] s ago and never "
        f"started by a worker \\(QUEUE_TIMEOUT 3600 s\\).\n$",
        err.getvalue(),
    )
    assert CommandExecution.objects.get(pk=lost.pk).status == Status.ABANDONED
    assert CommandExecution.objects.get(pk=waiting.pk).status == Status.QUEUED


def test_an_unknown_backend_or_queue_is_refused_before_anything_is_written():
    with pytest.raises(Exception, match="nowhere"):
        tasks.enqueue_command("noop_once", backend="nowhere")
    with (
        override_settings(
            TASKS={"default": {"BACKEND": f"{API}.backends.dummy.DummyBackend", "QUEUES": ["a"]}}
        ),
        pytest.raises(Exception, match="Queue 'b' is not valid"),
    ):
        tasks.enqueue_command("noop_once", queue_name="b")
    assert rows() == []


@DUMMY
def test_a_task_that_cannot_be_enqueued_frees_the_claim(monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(type(backend()), "enqueue", broken)
    with pytest.raises(ConnectionError):
        tasks.enqueue_command("noop_once")
    [row] = rows()
    assert (row.status, row.lock_key, row.once_key) == (Status.FAILED, None, None)
    assert row.error_message == "Could not enqueue its task: ConnectionError: the broker is down"


@DUMMY
def test_a_queued_run_its_worker_cannot_start_is_alerted_once_as_failed(caplog):
    row = tasks.enqueue_command("with_options", "--count", "2")
    [result] = backend().results
    # The command lost its --count option between the enqueue and the delivery.
    execution_id, name, args, options = result.args
    context = importlib.import_module(f"{API}.base").TaskContext(task_result=result)
    stale = (execution_id, name, args, {**options, "gone": 1})
    with caplog.at_level(logging.ERROR, "managed_commands"):
        ended = result.task.call(context, *stale, **result.kwargs)
        again = result.task.call(context, *stale, **result.kwargs)
    assert ended == {"execution_id": row.pk, "status": "failed", "started": False}
    assert again == {"execution_id": row.pk, "status": "failed", "started": False}
    failed = CommandExecution.objects.get(pk=row.pk)
    assert failed.error_message.startswith("Not started: Cannot enqueue 'with_options': ")
    # Logged once, through the alert of every failed run (signals.run_ended()).
    [alert] = [r for r in caplog.records if r.name == "managed_commands.alerts"]
    assert alert.levelno == logging.ERROR and alert.run_id == row.pk
    assert alert.getMessage() == (
        f"Run #{row.pk} of 'with_options' failed: {failed.error_message}\n"
        f"Admin: /admin/managed_commands/commandexecution/{row.pk}/change/"
    )
