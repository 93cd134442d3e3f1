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

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import TABLE, ProcessProject
from tests.workers import (
    CHAIN,
    ENQUEUERS,
    check_chain,
    check_racing_enqueues,
    enqueue,
    extra,
    settled,
    statuses,
    wait_for,
)

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]
# The workers: django-tasks-db (the "tasks" extra, with the backport on Django 5.2).
pytest.importorskip("django_tasks_db")

TASKS = "django_tasks_database_dbtaskresult"
ENV = {"MC_TEST_TASKS": "db", "MC_TEST_EXTRA_APPS": "tests.chainapp", "MC_TEST_LEASE": "2"}


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


def tasks(project: ProcessProject) -> list[tuple[str, str]]:
    """(id, status) of every task in django_tasks_db's table, the id as a UUID string."""
    return [
        (str(uuid.UUID(str(pk))), status)
        for pk, status in project.sql(f"SELECT id, status FROM {TASKS}")
    ]


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

    codes = check_racing_enqueues(project, results)

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

    workers_used = check_chain(project)
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


def test_a_queued_run_whose_task_the_backend_no_longer_knows_is_recovered_at_once(
    workers_project,
):
    """Its task deleted from django-tasks-db's table (pruned, or a database restored):
    the next enqueue asks the backend (get_result), recovers the queued run at once
    rather than after QUEUE_TIMEOUT, and the new run is the one a worker runs."""
    project = workers_project
    assert enqueue(project, "once").returncode == 0
    [(task_id, _)] = tasks(project)
    project.sql(f"DELETE FROM {TASKS}")
    again = enqueue(project, "once")
    assert again.returncode == 0 and "Enqueued 'once'" in again.stdout, again.stderr
    with workers(project, 1):
        wait_for(lambda: "succeeded" in statuses(project, "once"), "the new run succeeded")

    assert statuses(project, "once") == ["abandoned", "succeeded"]
    abandoned = project.rows("once")[0]
    stored = extra(project, abandoned["id"])["task_id"]
    assert str(uuid.UUID(stored)) == task_id
    assert abandoned["error_message"] == (
        f"Abandoned: task backend 'default' no longer knows its task {stored}."
    )


# The admin's console, posting its form from a manage.py shell (Django's test client,
# the project's own database) as a browser would; the browser tests drive it in Chromium.
CONSOLE = {"MC_TEST_EXTRA_APPS": "tests.chainapp,tests.batchapp"}
CONSOLE_POST = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
user, _ = get_user_model().objects.get_or_create(username="operator", is_staff=True)
user.user_permissions.set(
    Permission.objects.filter(codename__in=["view_commandexecution", "run_managed_commands"])
)
client = Client()
client.force_login(user)
response = client.post(
    "/admin/managed_commands/commandexecution/command/console_fix/",
    {"action": "%s", "limit": "150", "mode": "count", "pause": "0", "batch_size": "50",
     "since": "2026-01-31", "notify": "on", "api_token": "s3cr3t-t0k3n-v4lue"},
)
print(response.status_code, response.headers.get("Location"))
"""


def test_the_admin_console_enqueues_a_preview_then_a_run_that_a_worker_runs(workers_project):
    project = workers_project
    project.empty_batch_data()
    assert project.run("seed_items", "--count", "200", env=CONSOLE).returncode == 0

    def post(action: str) -> str:
        result = project.run("shell", "--no-imports", "-c", CONSOLE_POST % action, env=CONSOLE)
        assert result.returncode == 0, result.stderr
        return result.stdout

    with workers(project, 1, env=CONSOLE) as pool:
        preview = post("preview")
        wait_for(lambda: statuses(project, "console_fix") == ["dry_run"], "the dry run ended")
        run = post("run")
        wait_for(lambda: statuses(project, "console_fix")[-1] == "succeeded", "the run succeeded")
    assert "Traceback" not in pool.output(), pool.output()
    dry, real = project.rows("console_fix")
    assert preview == f"302 /admin/managed_commands/commandexecution/{dry['id']}/change/\n"
    assert run == f"302 /admin/managed_commands/commandexecution/{real['id']}/change/\n"
    parameters = (
        json.loads(dry["parameters"]) if isinstance(dry["parameters"], str) else dry["parameters"]
    )
    assert parameters["options"]["api_token"] == "********"
    assert (parameters["options"]["limit"], parameters["options"]["dry_run"]) == (150, True)
    for row in (dry, real):
        origin = extra(project, row["id"])["origin"]
        assert (origin["trigger"], origin["django_user"], origin["worker"]) == (
            "admin",
            "operator",
            "w1",
        )
        assert "s3cr3t-t0k3n-v4lue" not in str(row)
    assert "s3cr3t-t0k3n-v4lue" not in pool.output()
    assert real["output"].splitlines()[-1] == "console_fix: done"
    processed = project.sql("SELECT processed, COUNT(*) FROM batchmodels_item GROUP BY processed")
    assert sorted(processed) == [(0, 50), (1, 150)]
