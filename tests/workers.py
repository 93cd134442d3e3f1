"""Real task workers for the process tests: their processes, their servers, and the
reads the tests share (``test_task_workers*.py``).

A worker writes its output to a file in the project's folder, so a test can wait
for a line (a barrier) while the worker runs. Every wait is bounded; every
process started is killed, by its PID, on the way out.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.processes import MANAGE, TABLE, ProcessProject

ENQUEUERS = 20
CHAIN = [f"chain_{n}" for n in range(1, 6)]
REDIS = ("127.0.0.1", 6379)
AMQP = ("127.0.0.1", 5672)


class Worker:
    """One worker process, its output going to ``log``."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.process = process
        self.log = log
        self.name = name

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        """Block until the worker has written ``text``; fail if it exits first."""

        def written() -> bool:
            if text in self.output():
                return True
            if not self.alive():
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            return False

        wait_for(written, f"{self.name} wrote {text!r}", timeout)

    def exit_code(self, timeout: float = 60) -> int:
        """Wait for the worker to exit by itself; fail (with its output) if it does not."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout:g} s:\n{self.output()}"
            ) from None


class Workers(list[Worker]):
    def output(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.output()}" for w in self)

    def by_pid(self, pid: int) -> Worker:
        [found] = [worker for worker in self if worker.pid == pid]
        return found


@contextmanager
def workers(
    project: ProcessProject,
    argv: Callable[[str], Sequence[str]],
    count: int,
    env: dict[str, str] | None = None,
    ready: str | None = None,
) -> Iterator[Workers]:
    """``count`` workers ``w1`` .., started with ``argv(name)`` (after the Python
    interpreter), each waited for until it has written ``ready``; killed, if still
    running, on the way out, by PID, with the processes it started (an RQ horse,
    a Celery pool child)."""
    pool = Workers()
    try:
        for n in range(1, count + 1):
            name = f"w{n}"
            log = project.workdir / f"{name}-{time.monotonic_ns()}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, *argv(name)],
                    env={**project.env, **(env or {})},
                    cwd=MANAGE.parent.parent,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            pool.append(Worker(process, log, name))
        if ready:
            for worker in pool:
                worker.wait_for_line(ready)
        yield pool
    finally:
        for worker in pool:
            # Its children first (an RQ horse has a process group of its own).
            for pid in [*descendants(worker.pid), worker.pid] if worker.alive() else []:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.process.wait(timeout=30)


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs, read from /proc (deepest first)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found: list[int] = []
    for child in map(int, children):
        found += [*descendants(child), child]
    return found


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


def moment(value: Any) -> datetime.datetime | None:
    """A timestamp column as a naive UTC datetime (SQLite stores text); None for NULL."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def enqueue(project: ProcessProject, *argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return project.run("enqueue_command", *argv, **kwargs)


def check_racing_enqueues(
    project: ProcessProject, results: list[subprocess.CompletedProcess[str]]
) -> list[int]:
    """What 20 racing enqueues of ``once`` must show: one enqueued, one run, every other
    refused at once (exit 3, without claiming to wait) or skipped as done. Returns the
    exit codes."""
    codes = sorted(result.returncode for result in results)
    assert set(codes) <= {0, 3}, [(r.returncode, r.stderr) for r in results]
    assert not any("Traceback" in r.stderr + r.stdout for r in results)
    enqueued = [r for r in results if "Enqueued 'once' as run #" in r.stdout]
    assert len(enqueued) == 1, [r.stdout for r in results]
    for result in results:
        assert "waiting for it to finish" not in result.stderr, result.stderr
        if result.returncode == 3:
            assert "another run holds its lock" in result.stderr, result.stderr
            assert "nothing was started or enqueued" in result.stderr, result.stderr
        elif result not in enqueued:
            assert "Skipped 'once': this run_once command already ran" in result.stdout
    assert [line.split()[0] for line in project.effect_lines()] == ["once"]
    return codes


def check_chain(project: ProcessProject) -> set[str]:
    """After ``run_pending_commands --enqueue``: the chain ran once each, in order.
    Returns the workers that ran it."""
    noted = [line.split()[0] for line in project.effect_lines()]
    assert [name for name in noted if name.startswith("chain_")] == CHAIN
    assert all(statuses(project, name) == ["succeeded"] for name in CHAIN)
    # Each command ran once: the one that failed beside the chain was not retried
    # by the successes after it (it is pending, and was runnable all along).
    ran = Counter(row["command_name"] for row in project.rows())
    assert set(ran.values()) == {1}, ran
    assert statuses(project, "fails_always") == ["failed"]
    assert noted.count("fails_always") == 1
    times = [extra(project, project.rows(name)[0]["id"]) for name in CHAIN]
    for before, after in itertools.pairwise(times):
        assert after["executed_at"] >= before["finished_at"], (before, after)
    return {each["origin"]["worker"] for each in times}


def require_server(name: str, address: tuple[str, int], how: str) -> None:
    """Fail (CI) or skip (elsewhere) unless a server answers at ``address``."""
    try:
        socket.create_connection(address, timeout=3).close()
    except OSError as exc:
        reason = f"{name} does not answer on {address[0]}:{address[1]} ({exc}); {how}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI requires it)")
        pytest.skip(reason)


def require_package(module: str, install: str) -> None:
    """Fail (CI) or skip (elsewhere) unless ``module`` can be imported."""
    try:
        __import__(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc}): pip install {install}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI requires it)")
        pytest.skip(reason)
