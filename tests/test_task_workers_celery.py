"""Managed commands on Celery workers: django-tasks-celery (Django 6.0+), a real
RabbitMQ broker, real ``celery worker`` processes of the app in tests/celery_app.py.

A prefork worker runs each task in a pool child (the run records the child's
PID), a solo worker in its main process. Every process of this module runs with
``MC_TEST_TASKS=celery``, a queue of the module's own on the broker (deleted
before each test), results in a folder of the module's own (Celery's file result
backend, which ``get_result()`` reads), ``tests.chainapp`` installed and a lease
of 2 s. ``once --seconds N`` holds until the release file exists.

Run in CI's Django 6.x entries; RabbitMQ must answer on 127.0.0.1:5672
(``.ci/run`` starts it), else the tests fail under CI and skip elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid

import pytest

from tests.processes import ProcessProject
from tests.workers import (
    AMQP,
    ENQUEUERS,
    check_chain,
    check_racing_enqueues,
    enqueue,
    extra,
    require_package,
    require_server,
    settled,
    statuses,
    wait_for,
    workers,
)

# Its outcome depends on the Django version (6.0+ only): it runs in the 6.x entries.
pytestmark = [
    pytest.mark.engine("celery"),
    pytest.mark.django,
    pytest.mark.backends("sqlite", "postgresql"),
]

BROKER = f"amqp://guest:guest@{AMQP[0]}:{AMQP[1]}//"
READY = " ready."


@pytest.fixture(scope="module")
def celery_base(backend, tmp_path_factory):
    require_package("django_tasks_celery", "'managed-commands[celery]' (Django 6.0+)")
    require_server("RabbitMQ", AMQP, "start it (apt-get install rabbitmq-server)")
    project = ProcessProject(backend, tmp_path_factory.mktemp(f"celery-{backend}"))
    project.queue = f"managed-commands-tests-{uuid.uuid4().hex[:12]}"
    project.results = project.workdir / "results"
    project.env.update(
        MC_TEST_TASKS="celery",
        MC_TEST_AMQP_URL=BROKER,
        MC_TEST_CELERY_QUEUE=project.queue,
        MC_TEST_CELERY_RESULTS=f"file://{project.results}",
        MC_TEST_EXTRA_APPS="tests.chainapp",
        MC_TEST_LEASE="2",
        MC_TEST_RELEASE=str(project.workdir / "release"),
    )
    project.create()
    try:
        yield project
    finally:
        delete_queue(project.queue)
        project.drop()


@pytest.fixture
def celery_project(celery_base):
    """The project, its history, queue and results emptied, nothing released."""
    celery_base.reset()
    delete_queue(celery_base.queue)
    shutil.rmtree(celery_base.results, ignore_errors=True)
    celery_base.results.mkdir()
    (celery_base.workdir / "release").unlink(missing_ok=True)
    return celery_base


def delete_queue(name: str) -> None:
    from kombu import Connection

    with Connection(BROKER, connect_timeout=5) as connection:
        connection.default_channel.queue_delete(name)


def celery_worker(pool: str = "prefork"):
    def argv(name: str) -> list[str]:
        return [
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "-n",
            f"{name}@%h",
            "--pool",
            pool,
            "--concurrency",
            "1",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]

    return argv


def task_state(project: ProcessProject, task_id: str) -> dict | None:
    """What the file result backend holds for ``task_id`` (None until it holds anything)."""
    path = project.results / f"celery-task-meta-{task_id}"
    return json.loads(path.read_text()) if path.exists() else None


def test_racing_enqueues_run_a_run_once_command_once_on_two_celery_workers(celery_project, report):
    project = celery_project
    start = time.monotonic()
    with workers(project, celery_worker(), 2, ready=READY) as pool:
        results = project.race(ENQUEUERS, "enqueue_command", "once")
        wait_for(lambda: "succeeded" in statuses(project, "once"), "a run succeeded")
        [row] = project.rows("once")
        task_id = extra(project, row["id"])["task_id"]
        wait_for(lambda: task_state(project, task_id), "Celery stored the task's result")
    elapsed = time.monotonic() - start
    assert "Traceback" not in pool.output(), pool.output()

    codes = check_racing_enqueues(project, results)
    assert row["status"] == "succeeded" and "once: done" in row["output"]
    # A pool child ran it, in one of the two workers, which name themselves.
    assert extra(project, row["id"])["origin"]["worker"].split("@")[0] in ("w1", "w2")
    assert row["pid"] not in (worker.pid for worker in pool)
    assert task_state(project, task_id)["status"] == "SUCCESS"
    report(
        f"Celery ({project.backend}): {ENQUEUERS} racing enqueues ({codes.count(0)} exit 0, "
        f"{codes.count(3)} exit 3), 1 run, {elapsed:.1f} s"
    )


def test_a_pool_child_killed_mid_run_is_taken_over_by_the_next_enqueue(celery_project, report):
    project = celery_project
    with workers(project, celery_worker(), 2, ready=READY) as pool:
        assert enqueue(project, "once", "--seconds", "120").returncode == 0
        wait_for(project.started.exists, "the run started in a pool child")
        [row] = project.rows("once")
        os.kill(row["pid"], signal.SIGKILL)  # the child of a worker started here
        killed_at = time.monotonic()
        wait_for(lambda: "WorkerLostError" in pool.output(), "Celery saw it")
        assert statuses(project, "once") == ["running"]  # nothing recorded its end

        retry = enqueue(project, "once")
        taken_over_after = time.monotonic() - killed_at
        assert retry.returncode == 0 and "Enqueued 'once'" in retry.stdout, retry.stderr
        wait_for(lambda: "succeeded" in statuses(project, "once"), "the new run succeeded")
        assert all(worker.alive() for worker in pool)

    assert statuses(project, "once") == ["abandoned", "succeeded"]
    abandoned, _ = project.rows("once")
    assert abandoned["error_message"].startswith(f"Abandoned: process {row['pid']} on ")
    assert "is no longer running" in abandoned["error_message"]
    report(
        f"Celery ({project.backend}): pool child killed, taken over after {taken_over_after:.1f} s"
    )


def test_sigterm_to_a_pool_child_interrupts_the_run_and_to_the_worker_waits_for_it(
    celery_project,
):
    """Prefork: SIGTERM to the child running the command ends the run ``interrupted``
    ("Terminated by SIGTERM.", not billiard's exit code) and the pool replaces the
    child; SIGTERM to the worker's main process (docker stop, Kubernetes) is Celery's
    warm shutdown, which waits for the run; the worker then exits 0."""
    project = celery_project
    with workers(project, celery_worker(), 1, ready=READY) as (worker,):
        assert enqueue(project, "once", "--seconds", "120").returncode == 0
        wait_for(project.started.exists, "the run started")
        [row] = project.rows("once")
        os.kill(row["pid"], signal.SIGTERM)
        wait_for(lambda: statuses(project, "once") == ["interrupted"], "the run was interrupted")
        worker.wait_for_line("WorkerLostError")
        assert worker.alive()

        project.started.unlink()
        assert enqueue(project, "once", "--seconds", "120").returncode == 0
        wait_for(project.started.exists, "the second run started")
        worker.signal(signal.SIGTERM)
        worker.wait_for_line("Warm shutdown")
        assert worker.alive() and statuses(project, "once") == ["interrupted", "running"]
        (project.workdir / "release").touch()
        assert worker.exit_code() == 0, worker.output()

    interrupted, succeeded = project.rows("once")
    assert interrupted["error_message"] == "Terminated by SIGTERM."
    assert interrupted["lock_key"] is None and interrupted["pid"] == row["pid"]
    assert succeeded["status"] == "succeeded" and "once: done" in succeeded["output"]


def test_sigterm_to_a_solo_worker_interrupts_the_run_and_the_worker_exits_cleanly(
    celery_project,
):
    """Solo pool: the main process runs the command. SIGTERM is Celery's warm shutdown
    and stops the run (``interrupted``); the task fails with an ordinary exception,
    never a BaseException, so the worker ends as asked, exit 0, no crash."""
    project = celery_project
    with workers(project, celery_worker("solo"), 1, ready=READY) as (worker,):
        assert enqueue(project, "once", "--seconds", "120").returncode == 0
        wait_for(project.started.exists, "the run started")
        worker.signal(signal.SIGTERM)
        assert worker.exit_code() == 0, worker.output()

    output = worker.output()
    assert "Unrecoverable error" not in output, output
    assert "WorkerStopped: Run #" in output, output
    [row] = project.rows("once")
    assert (row["status"], row["error_message"]) == ("interrupted", "Terminated by SIGTERM.")
    assert row["pid"] == worker.pid and row["lock_key"] is None
    state = task_state(project, extra(project, row["id"])["task_id"])
    assert state["status"] == "FAILURE"
    assert state["result"]["exc_type"] == "WorkerStopped", state


def test_a_chain_runs_in_order_across_two_celery_workers(celery_project, report):
    project = celery_project
    start = time.monotonic()
    with workers(project, celery_worker(), 2, ready=READY) as pool:
        result = project.run("run_pending_commands", "--enqueue")
        assert result.returncode == 0, result.stderr
        wait_for(lambda: statuses(project, "chain_5") == ["succeeded"], "the chain ran")
        wait_for(lambda: settled(project), "the other pending commands settled")
    elapsed = time.monotonic() - start
    assert "Traceback" not in pool.output(), pool.output()
    used = check_chain(project)
    report(
        f"Celery ({project.backend}): chain of 5 in order on {', '.join(sorted(used))}, "
        f"{elapsed:.1f} s"
    )


def test_a_queued_run_whose_task_a_worker_does_not_know_is_recovered_by_a_check(
    celery_project,
):
    """A worker whose Celery app never found the task (no autodiscover_tasks()) fails
    it as NotRegistered: ``show_managed_commands --check`` asks Celery (get_result),
    recovers the queued run at once with that error, and the next enqueue runs it."""
    project = celery_project
    lost = {"MC_TEST_CELERY_NO_TASKS": "1"}
    with workers(project, celery_worker(), 1, env=lost, ready=READY):
        assert enqueue(project, "once").returncode == 0
        [queued] = project.rows("once")
        task_id = extra(project, queued["id"])["task_id"]
        wait_for(lambda: task_state(project, task_id), "Celery failed the task")
    assert statuses(project, "once") == ["queued"]

    check = project.run("show_managed_commands", "--check")
    expected = (
        f"Abandoned: its task {task_id} failed on task backend 'default': "
        f"NotRegistered (the workers' Celery app must find the task: "
        f"call app.autodiscover_tasks())."
    )
    assert f"Recovered run #{queued['id']} of 'once': {expected}" in check.stderr, check.stderr
    assert statuses(project, "once") == ["abandoned"]
    assert project.rows("once")[0]["error_message"] == expected

    assert enqueue(project, "once").returncode == 0
    with workers(project, celery_worker(), 1, ready=READY):
        wait_for(lambda: "succeeded" in statuses(project, "once"), "the new run succeeded")
    assert statuses(project, "once") == ["abandoned", "succeeded"]
