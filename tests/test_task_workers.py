"""Managed commands on real task workers: ``db_worker`` processes of django-tasks-db.

Every ``manage.py`` process of this module, the ``migrate`` included, runs with
``MC_TEST_TASKS=db`` (the ``django_tasks_db.DatabaseBackend``, whose table
the workers poll), ``tests.chainapp`` installed (``chain_1`` .. ``chain_5``,
each requiring the one before, and ``fails_always``) and a lease of 2 s. The
commands that hold, ``once --seconds N``, keep running until the release file
exists (none does: a worker stops them).

Every wait is bounded and polls rows or files; every process started is
killed in a ``finally``.
"""

from __future__ import annotations

import datetime
import itertools
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.processes import TABLE, ProcessProject

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]
# The workers: django-tasks-db (the "tasks" extra, with the backport on Django 5.2).
pytest.importorskip("django_tasks_db")

TASKS = "django_tasks_database_dbtaskresult"
CHAIN = [f"chain_{n}" for n in range(1, 6)]
ENV = {"MC_TEST_TASKS": "db", "MC_TEST_EXTRA_APPS": "tests.chainapp", "MC_TEST_LEASE": "2"}
ENQUEUERS = 20


@pytest.fixture(scope="module")
def tasks_project(backend, tmp_path_factory):
    """A database migrated with django_tasks_db's tables too."""
    project = ProcessProject(backend, tmp_path_factory.mktemp(f"tasks-{backend}"))
    project.env.update(ENV, MC_TEST_RELEASE=str(project.workdir / "release"))
    project.create()
    yield project
    project.drop()


@pytest.fixture
def workers_project(tasks_project):
    """The project, its history and task tables emptied, nothing released."""
    tasks_project.reset()
    tasks_project.sql(f"DELETE FROM {TASKS}")
    release_file(tasks_project).unlink(missing_ok=True)
    return tasks_project


def release_file(project: ProcessProject) -> Path:
    return project.workdir / "release"


class Workers(list[subprocess.Popen[str]]):
    """The worker processes of a ``workers()`` block; ``outputs`` once it ended."""

    outputs: list[str]

    def output(self) -> str:
        return "\n".join(self.outputs)


@contextmanager
def workers(
    project: ProcessProject, count: int, env: dict[str, str] | None = None
) -> Iterator[Workers]:
    """``count`` db_worker processes, ``w1`` .., killed (if still running) on the way out."""
    pool = Workers()
    pool.outputs = []
    try:
        for n in range(1, count + 1):
            pool.append(
                project.spawn(
                    "db_worker",
                    "--interval",
                    "0.1",
                    "--no-startup-delay",
                    "--worker-id",
                    f"w{n}",
                    env=env,
                )
            )
        yield pool
    finally:
        for process in pool:
            if process.poll() is None:
                process.kill()
            stdout, stderr = process.communicate(timeout=30)
            pool.outputs.append(f"{stdout or ''}{stderr or ''}")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def statuses(project: ProcessProject, name: str) -> list[str]:
    return [row["status"] for row in project.rows(name)]


def settled(project: ProcessProject) -> bool:
    """No run left queued or running."""
    return not project.sql(f"SELECT id FROM {TABLE} WHERE status IN ('queued', 'running')")


def extra(project: ProcessProject, pk: int) -> dict[str, Any]:
    """The columns ``project.rows()`` leaves out: task id, origin, start time."""
    task_id, origin, executed_at, finished_at = project.sql(
        f"SELECT task_id, origin, executed_at, finished_at FROM {TABLE} WHERE id = ?", (pk,)
    )[0]
    return {
        "task_id": task_id,
        "origin": json.loads(origin) if isinstance(origin, str) else origin,
        "executed_at": moment(executed_at),
        "finished_at": moment(finished_at),
    }


def moment(value: Any) -> datetime.datetime:
    """A timestamp column as a naive UTC datetime (SQLite stores text)."""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def tasks(project: ProcessProject) -> list[tuple[str, str]]:
    """(id, status) of every task in django_tasks_db's table, the id as a UUID string."""
    return [
        (str(uuid.UUID(str(pk))), status)
        for pk, status in project.sql(f"SELECT id, status FROM {TASKS}")
    ]


def enqueue(project: ProcessProject, *argv: str) -> subprocess.CompletedProcess[str]:
    return project.run("enqueue_command", *argv)


def test_racing_enqueues_run_a_run_once_command_once_on_two_workers(workers_project, report):
    project = workers_project
    start = time.monotonic()
    with workers(project, 2) as pool:
        results = project.race(ENQUEUERS, "enqueue_command", "once")
        wait_for(lambda: "succeeded" in statuses(project, "once"), "a run succeeded")
        wait_for(
            lambda: tasks(project) and all(s == "SUCCESSFUL" for _, s in tasks(project)),
            "the task finished",
        )
        pids = {process.pid: f"w{n}" for n, process in enumerate(pool, 1)}
    elapsed = time.monotonic() - start
    assert "Traceback" not in pool.output(), pool.output()

    codes = sorted(result.returncode for result in results)
    assert set(codes) <= {0, 3}, [(r.returncode, r.stderr) for r in results]
    assert not any("Traceback" in r.stderr + r.stdout for r in results)
    enqueued = [r for r in results if "Enqueued 'once' as run #" in r.stdout]
    assert len(enqueued) == 1, [r.stdout for r in results]
    for result in results:
        if result.returncode == 3:
            assert "another run holds its lock" in result.stderr, result.stderr
        elif result not in enqueued:
            assert "Skipped 'once': this run_once command already ran" in result.stdout
    assert [line.split()[0] for line in project.effect_lines()] == ["once"]

    [row] = project.rows("once")
    assert row["status"] == "succeeded" and row["success"]
    assert "once: done" in row["output"]
    assert row["duration"] is not None and row["finished_at"] is not None
    assert row["hostname"] and row["pid"] in pids
    more = extra(project, row["id"])
    [(task_id, _)] = tasks(project)
    assert str(uuid.UUID(more["task_id"])) == task_id
    assert more["origin"]["worker"] == pids[row["pid"]]
    report(
        f"task workers ({project.backend}): {ENQUEUERS} enqueues "
        f"({codes.count(0)} exit 0, {codes.count(3)} exit 3), 1 run, {elapsed:.1f} s"
    )


@pytest.mark.parametrize("host", ["same host", "other host"])
def test_a_run_whose_worker_was_killed_is_taken_over_and_run_by_the_other(
    workers_project, host, report
):
    """On the same host the dead process tells; a worker on another host (its row's
    host_id changed) is judged by its heartbeat lease (MC_TEST_LEASE=2) alone."""
    project = workers_project
    with workers(project, 2) as pool:
        result = enqueue(project, "once", "--seconds", "120")
        assert result.returncode == 0, result.stderr
        wait_for(project.started.exists, "the run started on a worker")
        [row] = project.rows("once")
        assert row["status"] == "running"
        [killed] = [p for p in pool if p.pid == row["pid"]]
        [survivor] = [p for p in pool if p is not killed]
        killed.kill()
        killed.wait(timeout=30)
        killed_at = time.monotonic()
        assert statuses(project, "once") == ["running"]  # nothing recorded its end
        if host == "other host":
            project.sql(f"UPDATE {TABLE} SET host_id = 'elsewhere' WHERE id = ?", (row["id"],))

        def take_over() -> bool:
            retry = enqueue(project, "once")
            assert retry.returncode in (0, 3), retry.stderr
            return retry.returncode == 0

        wait_for(take_over, "a later enqueue took the run over", timeout=60)
        taken_over_after = time.monotonic() - killed_at
        wait_for(lambda: "succeeded" in statuses(project, "once"), "the taken-over run succeeded")
        wait_for(lambda: survivor.poll() is None and settled(project), "the runs settled")
        assert survivor.poll() is None

    assert "Traceback" not in pool.outputs[pool.index(survivor)], pool.output()
    assert statuses(project, "once") == ["abandoned", "succeeded"]
    abandoned, succeeded = project.rows("once")
    assert succeeded["pid"] == survivor.pid
    assert abandoned["pid"] == killed.pid
    if host == "same host":
        assert f"process {killed.pid} on" in abandoned["error_message"]
        assert "is no longer running" in abandoned["error_message"]
    else:
        assert "no heartbeat from process" in abandoned["error_message"]
        assert "(lease 2 s)" in abandoned["error_message"]
    report(
        f"task workers ({project.backend}): worker killed, run taken over after "
        f"{taken_over_after:.1f} s ({host})"
    )
    assert [line.split()[0] for line in project.effect_lines()] == ["once", "once"]


def test_sigterm_on_a_worker_interrupts_the_run_and_the_worker_exits_gracefully(
    workers_project,
):
    project = workers_project
    with workers(project, 1) as (worker,):
        result = enqueue(project, "once", "--seconds", "120")
        assert result.returncode == 0, result.stderr
        wait_for(project.started.exists, "the run started on the worker")
        assert statuses(project, "once") == ["running"]
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = project.wait(worker, timeout=60)
        assert worker.returncode == 0, (stdout, stderr)
        assert "shutting down gracefully" in stdout + stderr

    [row] = project.rows("once")
    assert row["status"] == "interrupted" and row["pid"] == worker.pid
    assert row["finished_at"] is not None
    [(_, task_status)] = tasks(project)
    assert task_status == "FAILED"

    # Interrupted is not done: the run_once command can be enqueued, and runs, again.
    again = enqueue(project, "once")
    assert again.returncode == 0 and "Enqueued 'once'" in again.stdout, again.stderr
    with workers(project, 1):
        wait_for(lambda: "succeeded" in statuses(project, "once"), "the second run succeeded")
    assert statuses(project, "once") == ["interrupted", "succeeded"]


def test_run_pending_commands_enqueue_runs_a_chain_in_order_across_two_workers(
    workers_project, report
):
    project = workers_project
    start = time.monotonic()
    with workers(project, 2) as pool:
        result = project.run("run_pending_commands", "--enqueue")
        assert result.returncode == 0, result.stderr
        assert "chain_1 (run #" in result.stdout
        wait_for(
            lambda: all(statuses(project, name) == ["succeeded"] for name in CHAIN),
            "the chain succeeded",
            timeout=120,
        )
        wait_for(lambda: settled(project), "the other pending commands settled")
    elapsed = time.monotonic() - start
    assert "Traceback" not in pool.output(), pool.output()

    noted = [line.split()[0] for line in project.effect_lines()]
    assert [name for name in noted if name.startswith("chain_")] == CHAIN
    # Each command ran once: the one that failed beside the chain was not retried
    # by the successes after it (it is pending, and was runnable all along).
    ran = Counter(row["command_name"] for row in project.rows())
    assert set(ran.values()) == {1}, ran
    assert statuses(project, "fails_always") == ["failed"]
    assert noted.count("fails_always") == 1
    rows = [project.rows(name)[0] for name in CHAIN]
    times = [extra(project, row["id"]) for row in rows]
    for before, after in itertools.pairwise(times):
        assert after["executed_at"] >= before["finished_at"], (before, after)
    workers_used = {each["origin"]["worker"] for each in times}
    report(
        f"task workers ({project.backend}): chain of {len(CHAIN)} run in order on "
        f"{', '.join(sorted(workers_used))}, {elapsed:.1f} s"
    )


@pytest.mark.backends("postgresql", "mariadb")
def test_a_queued_run_started_by_its_worker_is_not_taken_over_by_a_racing_enqueue(
    workers_project,
):
    """The worker's start lands between the enqueue's read of the queued row and its
    takeover: a third connection locks the row, the worker's start waits for it
    first, the enqueue's takeover (the row waited past QUEUE_TIMEOUT) second."""
    project = workers_project
    assert enqueue(project, "once").returncode == 0
    [queued] = project.rows("once")
    project.sql(
        f"UPDATE {TABLE} SET enqueued_at = enqueued_at - INTERVAL '2' HOUR WHERE id = ?",
        (queued["id"],),
    )
    # Each waits for the row lock as long as the test needs, however slow to start.
    patient = {"MC_TEST_LOCK_TIMEOUT": "300"}
    with (
        project.locked(
            f"SELECT id FROM {TABLE} WHERE id = ? FOR UPDATE", (queued["id"],)
        ) as release,
        workers(project, 1, env=patient) as pool,
    ):
        wait_for(lambda: project.waiting_updates() == 1, "the worker's start waits")
        racer = project.spawn("enqueue_command", "once", env=patient)
        wait_for(lambda: project.waiting_updates() == 2, "the takeover waits behind it")
        release()
        stdout, stderr = project.wait(racer, timeout=90)
        wait_for(
            lambda: "succeeded" in statuses(project, "once") and settled(project),
            "the runs settled",
        )

    assert [line.split()[0] for line in project.effect_lines()] == ["once"]
    # The queued row is the worker's run, succeeded; no row abandoned, none queued again.
    assert statuses(project, "once") == ["succeeded"]
    # The enqueue found the row started by a live worker (or already done): refused.
    if racer.returncode == 3:
        assert "Cannot start 'once': another run holds its lock (run #" in stderr, stderr
    else:
        assert (racer.returncode, stderr) == (0, ""), stderr
        assert "Skipped 'once': this run_once command already ran" in stdout, stdout
    [row] = project.rows("once")
    assert (row["id"], row["lock_key"], row["pid"]) == (queued["id"], None, pool[0].pid)
    assert not row["error_message"]
    assert [status for _, status in tasks(project)] == ["SUCCESSFUL"]
    assert "Traceback" not in pool.output() + stderr, pool.output() + stderr
