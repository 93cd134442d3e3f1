"""Exactly once in the shapes production has: containers that share a hostname,
paused holders, connections killed under a running command.

As root, ``unshare`` builds each shape on one machine: a PID namespace of its
own (a container with host networking), plus a UTS namespace with another
hostname (another host). Every test waits on processes and row states, never
on fixed sleeps, and kills what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests import backends

pytestmark = pytest.mark.processes

# Short leases, so a silent holder is presumed gone within a second or two.
LEASE = {"MC_TEST_LEASE": "1"}
# The stress entry of CI (MC_STRESS_ROUNDS above the default 2) runs the long versions.
STRESS = int(os.environ.get("MC_STRESS_ROUNDS", "2")) > 2


@pytest.fixture(scope="session")
def namespaces():
    """Fail in CI, skip elsewhere, when this machine cannot make PID namespaces."""
    problem = None
    if os.geteuid() != 0:
        problem = "creating PID namespaces needs root"
    elif not shutil.which("unshare"):
        problem = "unshare (util-linux) is not installed"
    else:
        probe = subprocess.run(
            [*in_namespace(), "true"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode:
            problem = f"unshare failed: {probe.stderr.strip()}"
    if problem and os.environ.get("CI"):
        pytest.fail(f"{problem}; CI must run the namespace tests, not skip them.")
    if problem:
        pytest.skip(problem)


def in_namespace(hostname: str | None = None) -> list[str]:
    """A command-line prefix running its command as PID 1 of a new PID namespace.

    With ``hostname``, also in a UTS namespace of its own under that name: to
    the database, another host. ``--kill-child`` takes the command down with
    ``unshare`` itself.
    """
    prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if hostname:
        prefix[1:1] = ["--uts"]
        prefix += ["sh", "-c", f'hostname {hostname} && exec "$@"', "sh"]
    return prefix


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [pid, *(descendant for child in children for descendant in process_tree(int(child)))]


def signal_tree(pid: int, signum: int) -> None:
    for member in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signum)


def test_a_holder_in_its_own_pid_namespace_is_waited_for_then_skipped(project, namespaces):
    release = project.workdir / "release"
    release.unlink(missing_ok=True)
    held = {**LEASE, "MC_TEST_RELEASE": str(release)}
    holder = project.spawn("once", "--seconds", "120", env=held, wrapper=in_namespace())
    try:
        project.wait_until_started(holder)
        # PID 1 here is another process: only the holder's heartbeat tells.
        assert [row["pid"] for row in project.rows("once")] == [1]
        waiter = project.spawn("once", env=LEASE)
        # The waiter says it waits before it does: then the holder may finish.
        waiting = waiter.stderr.readline()
    finally:
        release.touch()
        _, holder_stderr = project.wait(holder, 120)
    waiter_stdout, _ = project.wait(waiter)
    assert holder.returncode == 0, holder_stderr
    assert waiter.returncode == 0, waiting
    assert "'once' is already running (run #" in waiting
    assert waiter_stdout.startswith("Skipped 'once': this run_once command already ran")
    assert len(project.effect_lines()) == 1
    assert [row["status"] for row in project.rows("once")] == ["succeeded"]


def test_a_killed_holder_in_its_own_pid_namespace_is_taken_over_after_its_lease(
    project, namespaces
):
    holder = project.spawn("once", "--seconds", "120", env=LEASE, wrapper=in_namespace())
    try:
        project.wait_until_started(holder)
    finally:
        signal_tree(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=60)
    result = project.run("once", env=LEASE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "once: done\n"
    dead, taker = project.rows("once")
    assert (dead["status"], taker["status"]) == ("abandoned", "succeeded")
    assert dead["error_message"].startswith("Abandoned: no heartbeat from process 1 on ")
    assert dead["error_message"].endswith("(lease 1 s).")


def test_a_holder_paused_past_its_lease_never_overwrites_the_takeover(project, namespaces):
    holder = project.spawn(
        "once", "--seconds", "60", env=LEASE, wrapper=in_namespace(hostname="other-host")
    )
    try:
        project.wait_until_started(holder)
        signal_tree(holder.pid, signal.SIGSTOP)
        # Silent for longer than its lease: presumed gone and taken over.
        taker = project.run("once", env=LEASE)
    finally:
        signal_tree(holder.pid, signal.SIGCONT)
        try:
            _, holder_stderr = holder.communicate(timeout=60)
        finally:
            signal_tree(holder.pid, signal.SIGKILL)
    assert taker.returncode == 0, taker.stderr
    assert taker.stdout == "once: done\n"
    paused, took_over = project.rows("once")
    assert paused["hostname"] == "other-host"
    assert (paused["status"], took_over["status"]) == ("abandoned", "succeeded")
    # Woken, it learnt at its first beat that its claim was gone and stopped
    # at once (its body had 60 s to go): exit code 5, and the truth on stderr
    # and on its row, which stays abandoned.
    assert holder.returncode == 5, holder_stderr
    assert "Traceback" not in holder_stderr
    assert (
        f"ClaimLost: 'once' ended (interrupted) after its claim was taken over by run "
        f"#{took_over['id']}: it was silent for longer than its lease of 1 s"
    ) in holder_stderr
    assert paused["error_message"].startswith("Abandoned: no heartbeat from process 1 on ")
    assert paused["error_message"].endswith(
        f" Ended after its claim was taken over by run #{took_over['id']}: interrupted "
        f"after {paused['error_message'].rsplit(' after ', 1)[1]}"
    )
    assert not paused["success"] and paused["lock_key"] is None


def kill_other_connections(project) -> int:
    """Kill every connection to the project's database but this one (a failover)."""
    with backends.connect(project.backend, project.history_name) as conn:
        cursor = conn.cursor()
        if project.backend == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (project.history_name,),
            )
            return len(cursor.fetchall())
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
            (project.history_name,),
        )
        ids = [row[0] for row in cursor.fetchall()]
        for connection_id in ids:
            cursor.execute(f"KILL {int(connection_id)}")
        return len(ids)


@pytest.mark.backends("postgresql", "mariadb")
def test_a_run_whose_connections_are_killed_still_records_its_end(project):
    holder = project.spawn("once", "--seconds", "2")
    try:
        project.wait_until_started(holder)
        killed = kill_other_connections(project)
    finally:
        _, stderr = holder.communicate(timeout=120)
    assert killed >= 1
    assert holder.returncode == 0, stderr
    assert "Traceback" not in stderr
    [row] = project.rows("once")
    assert row["status"] == "succeeded" and row["lock_key"] is None
    assert row["duration"] >= 2
    again = project.run("once")
    assert again.returncode == 0 and again.stdout.startswith("Skipped 'once'")
    assert len(project.effect_lines()) == 1


def test_the_heartbeat_never_fails_a_commands_own_transactions(project):
    # A beat every 0.25 s for a minute on SQLite in the stress run (where a
    # beat written into the database would break it; 10 s otherwise), while
    # the command reads then writes inside atomic() without a pause.
    seconds = "60" if STRESS and project.backend == "sqlite" else "10"
    env = {**LEASE, "MC_TEST_EXTRA_APPS": "tests.helpersapp"}
    result = project.run("read_then_write", "--seconds", seconds, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "database is locked" not in result.stderr
    [row] = project.rows("read_then_write")
    assert row["status"] == "succeeded"
    assert int(result.stdout.split()[1]) > 0
