"""Managed commands on RQ workers: django-tasks-rq, a real Redis, real ``rqworker``
processes (``manage.py rqworker --job-class django_tasks_rq.Job``).

An RQ worker runs each job in a forked "work horse": the run's row records the
horse's PID. Every ``manage.py`` process of this module runs with
``MC_TEST_TASKS=rq`` on a Redis database of its own (an empty one, reserved for
the module and emptied before each test), ``tests.chainapp`` installed and a
lease of 2 s. ``once --seconds N`` holds until the release file exists.

Run once in CI (the 3.11 entry: SQLite and PostgreSQL); Redis must answer on
127.0.0.1:6379 (``.ci/run`` starts it), else the tests fail under CI and skip
elsewhere.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.processes import MANAGE, ProcessProject
from tests.workers import (
    ENQUEUERS,
    REDIS,
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

pytestmark = [pytest.mark.engine("rq"), pytest.mark.backends("sqlite", "postgresql")]

READY = "*** Listening on default"
#: What the enqueuing processes give RQ as the job timeout (RQ_QUEUES' DEFAULT_TIMEOUT).
JOB_TIMEOUT = 600


@contextmanager
def redis_database() -> Iterator[str]:
    """The URL of an empty Redis database (1-15), reserved (a key in database 0) until the
    block ends, then emptied: a developer's data in another is never touched."""
    import redis

    host, port = REDIS
    zero = redis.Redis(host=host, port=port)
    for number in range(1, 16):
        key = f"managed_commands:tests:reserved:{number}"
        if not zero.set(key, os.getpid(), nx=True, ex=3600):
            continue
        database = redis.Redis(host=host, port=port, db=number)
        if database.dbsize():
            zero.delete(key)  # someone's data: leave it alone
            continue
        try:
            yield f"redis://{host}:{port}/{number}"
        finally:
            database.flushdb()
            zero.delete(key)
        return
    raise AssertionError("No empty Redis database among 1-15 to run the RQ tests in.")


@pytest.fixture(scope="module")
def rq_base(backend, tmp_path_factory):
    require_package("django_tasks_rq", "-e '.[dev]' (the 'rq' extra)")
    require_server("Redis", REDIS, "start it (apt-get install redis-server)")
    with redis_database() as url:
        project = ProcessProject(backend, tmp_path_factory.mktemp(f"rq-{backend}"))
        project.env.update(
            MC_TEST_TASKS="rq",
            MC_TEST_REDIS_URL=url,
            MC_TEST_JOB_TIMEOUT=str(JOB_TIMEOUT),
            MC_TEST_EXTRA_APPS="tests.chainapp",
            MC_TEST_LEASE="2",
            MC_TEST_RELEASE=str(project.workdir / "release"),
        )
        project.create()
        project.redis_url = url
        try:
            yield project
        finally:
            project.drop()


@pytest.fixture
def rq_project(rq_base):
    """The project, its history and Redis database emptied, nothing released."""
    import redis

    rq_base.reset()
    redis.Redis.from_url(rq_base.redis_url).flushdb()
    (rq_base.workdir / "release").unlink(missing_ok=True)
    return rq_base


def rqworker(job_class: bool = True, tag: str = ""):
    """``manage.py rqworker``; ``tag`` makes its name new (RQ refuses a name it saw alive)."""

    def argv(name: str) -> list[str]:
        chosen = ["--job-class", "django_tasks_rq.Job"] if job_class else []
        return [str(MANAGE), "rqworker", *chosen, "--name", f"{name}{tag}", "default"]

    return argv


def job_status(project: ProcessProject, task_id: str) -> str | None:
    """The status RQ keeps for the job of ``task_id`` (None until it has one)."""
    import redis

    status = redis.Redis.from_url(project.redis_url).hget(f"rq:job:{task_id}", "status")
    return status.decode() if status else None


def test_racing_enqueues_run_a_run_once_command_once_on_two_rq_workers(rq_project, report):
    start = time.monotonic()
    with workers(rq_project, rqworker(), 2, ready=READY) as pool:
        results = rq_project.race(ENQUEUERS, "enqueue_command", "once")
        wait_for(lambda: "succeeded" in statuses(rq_project, "once"), "a run succeeded")
        wait_for(lambda: "Job OK" in pool.output(), "RQ recorded the job")
    elapsed = time.monotonic() - start
    assert "Traceback" not in pool.output(), pool.output()

    codes = check_racing_enqueues(rq_project, results)
    [row] = rq_project.rows("once")
    assert row["status"] == "succeeded" and "once: done" in row["output"]
    # The work horse ran it: a child of one of the two workers, which names itself.
    more = extra(rq_project, row["id"])
    assert more["origin"]["worker"] in ("w1", "w2")
    assert more["origin"]["task_backend"] == "default"
    assert row["pid"] not in (worker.pid for worker in pool)
    assert job_status(rq_project, more["task_id"]) == "finished"
    report(
        f"RQ ({rq_project.backend}): {ENQUEUERS} racing enqueues ({codes.count(0)} exit 0, "
        f"{codes.count(3)} exit 3), 1 run, {elapsed:.1f} s"
    )


def test_a_work_horse_killed_mid_run_is_taken_over_by_the_next_enqueue(rq_project, report):
    with workers(rq_project, rqworker(), 2, ready=READY) as pool:
        assert enqueue(rq_project, "once", "--seconds", "120").returncode == 0
        wait_for(rq_project.started.exists, "the run started in a work horse")
        [row] = rq_project.rows("once")
        os.kill(row["pid"], signal.SIGKILL)  # the horse: a child of a worker started here
        killed_at = time.monotonic()
        wait_for(lambda: "Work-horse terminated unexpectedly" in pool.output(), "RQ saw it")
        assert statuses(rq_project, "once") == ["running"]  # nothing recorded its end

        retry = enqueue(rq_project, "once")
        taken_over_after = time.monotonic() - killed_at
        assert retry.returncode == 0 and "Enqueued 'once'" in retry.stdout, retry.stderr
        wait_for(lambda: "succeeded" in statuses(rq_project, "once"), "the new run succeeded")
        assert all(worker.alive() for worker in pool)

    assert statuses(rq_project, "once") == ["abandoned", "succeeded"]
    abandoned, _ = rq_project.rows("once")
    assert abandoned["error_message"].startswith(f"Abandoned: process {row['pid']} on ")
    assert "is no longer running" in abandoned["error_message"]
    assert [line.split()[0] for line in rq_project.effect_lines()] == ["once", "once"]
    report(f"RQ ({rq_project.backend}): horse killed, taken over after {taken_over_after:.1f} s")


def test_sigterm_to_the_horse_interrupts_the_run_and_to_the_worker_waits_for_it(rq_project):
    """SIGTERM to the work horse: the run ends ``interrupted`` and the horse dies by it,
    the worker goes on. SIGTERM to the worker (docker stop, Kubernetes): RQ's warm
    shutdown waits for the horse, so the run ends as it would have; the worker exits 0."""
    with workers(rq_project, rqworker(), 1, ready=READY) as (worker,):
        assert enqueue(rq_project, "once", "--seconds", "120").returncode == 0
        wait_for(rq_project.started.exists, "the run started")
        [row] = rq_project.rows("once")
        os.kill(row["pid"], signal.SIGTERM)
        wait_for(lambda: statuses(rq_project, "once") == ["interrupted"], "the run was interrupted")
        worker.wait_for_line("waitpid returned 15 (signal 15)")
        assert worker.alive()

        # Interrupted is not done: enqueued again, and the worker is asked to stop mid-run.
        rq_project.started.unlink()
        assert enqueue(rq_project, "once", "--seconds", "120").returncode == 0
        wait_for(rq_project.started.exists, "the second run started")
        worker.signal(signal.SIGTERM)
        worker.wait_for_line("warm shut down requested")
        assert worker.alive() and statuses(rq_project, "once") == ["interrupted", "running"]
        (rq_project.workdir / "release").touch()
        # RQ's pubsub thread waits up to 60 s for a message (sleep_time=60), and the
        # worker's teardown may wait for it after "unsubscribing": allow that minute.
        assert worker.exit_code(timeout=90) == 0, worker.output()

    assert "Traceback" not in worker.output(), worker.output()
    interrupted, succeeded = rq_project.rows("once")
    assert interrupted["error_message"] == "Terminated by SIGTERM."
    assert interrupted["finished_at"] is not None and interrupted["lock_key"] is None
    assert succeeded["status"] == "succeeded" and "once: done" in succeeded["output"]


def test_a_job_timeout_shorter_than_the_run_fails_it_with_rqs_error(rq_project):
    """RQ stops a job at its timeout (RQ_QUEUES' DEFAULT_TIMEOUT, 180 s unless set), as
    given by the process that enqueued it: the run is ``failed`` with RQ's error."""
    with workers(rq_project, rqworker(), 1, ready=READY) as (worker,):
        short = {"MC_TEST_JOB_TIMEOUT": "1"}
        assert enqueue(rq_project, "once", "--seconds", "120", env=short).returncode == 0
        wait_for(lambda: statuses(rq_project, "once") == ["failed"], "the run failed", timeout=60)
        wait_for(lambda: "Job OK" in worker.output(), "RQ finished the job")
        assert worker.alive()

    [row] = rq_project.rows("once")
    assert row["error_message"] == (
        "JobTimeoutException: Task exceeded maximum timeout value (1 seconds)"
    )
    assert row["lock_key"] is None and not row["success"]


def test_a_chain_runs_in_order_across_two_rq_workers(rq_project, report):
    start = time.monotonic()
    with workers(rq_project, rqworker(), 2, ready=READY) as pool:
        result = rq_project.run("run_pending_commands", "--enqueue")
        assert result.returncode == 0, result.stderr
        wait_for(lambda: statuses(rq_project, "chain_5") == ["succeeded"], "the chain ran")
        wait_for(lambda: settled(rq_project), "the other pending commands settled")
    elapsed = time.monotonic() - start
    assert "Traceback" not in pool.output(), pool.output()
    used = check_chain(rq_project)
    report(
        f"RQ ({rq_project.backend}): chain of 5 in order on {', '.join(sorted(used))}, "
        f"{elapsed:.1f} s"
    )


def test_a_queued_run_whose_job_failed_is_recovered_at_once_with_rqs_error(rq_project):
    """A worker started without django-tasks-rq's job class fails every job before the
    run starts: the next enqueue asks RQ (get_result), recovers the queued run at once
    (not after QUEUE_TIMEOUT, an hour) with RQ's error and what to do, and enqueues anew."""
    with workers(rq_project, rqworker(job_class=False), 1, ready=READY):
        assert enqueue(rq_project, "once").returncode == 0
        [queued] = rq_project.rows("once")
        task_id = extra(rq_project, queued["id"])["task_id"]
        wait_for(lambda: job_status(rq_project, task_id) == "failed", "RQ failed the job")
    assert statuses(rq_project, "once") == ["queued"]

    start = time.monotonic()
    again = enqueue(rq_project, "once")
    assert again.returncode == 0 and "Enqueued 'once'" in again.stdout, again.stderr
    assert time.monotonic() - start < 30
    with workers(rq_project, rqworker(tag="-fixed"), 1, ready=READY):
        wait_for(lambda: "succeeded" in statuses(rq_project, "once"), "the new run succeeded")

    assert statuses(rq_project, "once") == ["abandoned", "succeeded"]
    abandoned, _ = rq_project.rows("once")
    assert abandoned["error_message"] == (
        f"Abandoned: its task {task_id} failed on task backend 'default': TypeError: 'Task' "
        f"object is not callable (start the RQ workers with --job-class django_tasks_rq.Job)."
    )
    assert abandoned["lock_key"] is None and abandoned["pid"] is None
    assert [line.split()[0] for line in rq_project.effect_lines()] == ["once"]
