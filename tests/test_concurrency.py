"""Exactly once across real processes released together by a barrier.

Every test runs ``ROUNDS`` rounds (MC_STRESS_ROUNDS, 2 by default; CI sets 20)
of ``RACERS`` processes and reports duplicates per rounds.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.processes

RACERS = int(os.environ.get("MC_RACERS", "16"))
ROUNDS = int(os.environ.get("MC_STRESS_ROUNDS", "2"))


def test_racing_processes_run_a_run_once_command_exactly_once(project, report):
    duplicates = []
    for _ in range(ROUNDS):
        project.reset()
        results = project.race(RACERS, "once", "--seconds", "0.2")
        duplicates.append(len(project.effect_lines()) - 1)
        assert [r.returncode for r in results] == [0] * RACERS, [r.stderr for r in results]
        assert not [r.stderr for r in results if "Traceback" in r.stderr]
        ran = [r for r in results if r.stdout == "once: done\n"]
        skipped = [r for r in results if r.stdout.startswith("Skipped 'once'")]
        assert (len(ran), len(skipped)) == (1, RACERS - 1)
        assert [row["status"] for row in project.rows("once")] == ["succeeded"]
    report(
        f"exactly once, {project.backend}: {sum(duplicates)} duplicate runs in {ROUNDS} rounds "
        f"of {RACERS} racing processes"
    )
    assert duplicates == [0] * ROUNDS


def test_after_a_failure_exactly_one_waiter_takes_over(project):
    for _ in range(min(ROUNDS, 3)):
        project.reset()
        results = project.race(RACERS, "once", "--seconds", "0.2", "--fail-first")
        codes = sorted(r.returncode for r in results)
        assert codes == [0] * (RACERS - 1) + [1], [r.stderr for r in results]
        assert len(project.effect_lines()) == 2
        assert [row["status"] for row in project.rows("once")] == ["failed", "succeeded"]


def test_repeatable_commands_never_overlap(project):
    results = project.race(4, "slow", "--seconds", "0.3")
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    assert [r["status"] for r in project.rows("slow")] == ["succeeded"] * 4
    # Each body started only after the previous one had ended.
    bodies = [line.split()[0] for line in project.effect_lines()]
    assert bodies == ["slow-start", "slow-end"] * 4


@pytest.mark.backends("postgresql")
def test_racing_processes_fit_the_connection_budget(project, report):
    # As many processes as PostgreSQL's default max_connections (100) in the
    # stress run, a short version otherwise: handle() runs once; a process the
    # server refuses a connection waits for one (up to RECONNECT_TIMEOUT),
    # then skips, or exits 4 with the server's message.
    count = 100 if ROUNDS > 2 else 24
    results = project.race(count, "once", "--seconds", "1", timeout=600)
    codes = [r.returncode for r in results]
    assert set(codes) <= {0, 4}, [r.stderr for r in results if r.returncode not in (0, 4)]
    assert not [r.stderr for r in results if "Traceback" in r.stderr]
    refused = [r.stderr for r in results if r.returncode == 4]
    assert all(stderr.startswith("TrackingUnavailable: ") for stderr in refused), refused
    assert len(project.effect_lines()) == 1
    assert [row["status"] for row in project.rows("once")] == ["succeeded"]
    report(
        f"connection budget, postgresql: {count} racing processes, 1 run, "
        f"{codes.count(0)} exited 0, {codes.count(4)} exited 4"
    )
