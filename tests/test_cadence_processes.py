"""Recurring commands (#26) in real manage.py processes on every backend: late in text
and JSON, failing, overrunning, the gate, and a late spell logged once by two
processes polling together. The clock is the history, backdated."""

from __future__ import annotations

import datetime
import json
import time

from django.utils import timezone

CADENCE = {"MC_TEST_EXTRA_APPS": "tests.cadenceapp", "MC_TEST_ALERTS_TO_STDERR": "1"}
LATE = "'hourly' is late: late since "


def _at(project, moment):
    """``moment`` as a parameter the backend's driver stores as Django would."""
    if project.backend == "postgresql":
        return moment
    naive = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return naive.isoformat(" ") if project.backend == "sqlite" else naive


def backdate(project, name, hours):
    then = _at(project, timezone.now() - datetime.timedelta(hours=hours))
    project.sql(
        "UPDATE managed_commands_commandexecution SET executed_at = ?, finished_at = ? "
        "WHERE command_name = ?",
        (then, then, name),
    )


def fresh(project):
    project.sql("DELETE FROM managed_commands_commandcadence")


def show(project, *options):
    return project.run("show_managed_commands", *options, env=CADENCE)


def test_late_failing_overrunning_and_the_gate(project, tmp_path):
    fresh(project)
    assert project.run("hourly", env=CADENCE).returncode == 0
    assert project.run("bounded", env=CADENCE).returncode == 0
    assert show(project, "--check-cadence").returncode == 0
    backdate(project, "hourly", 2)

    listed = show(project)
    assert (
        " [L] hourly " in listed.stdout
        and "expected every 1 h 00 min: Late since " in listed.stdout
    )
    (hourly,) = [c for c in json.loads(show(project, "--json").stdout) if c["name"] == "hourly"]
    assert (hourly["shown_state"], hourly["alarms"]) == ("late", ["late"])
    assert show(project, "--late").stdout.count("[L]") == 1
    gate = show(project, "--check-cadence")
    assert gate.returncode == 1
    assert gate.stderr.splitlines()[0].startswith("hourly: late since ")

    failed = project.run("hourly", "--fail", env=CADENCE)
    assert failed.returncode == 1
    # The alert, once, on the managed_commands logger (routed to stderr by the project).
    assert failed.stderr.count("of 'hourly' failed: RuntimeError: supplier API answered 503") == 1
    assert "Last lines of output:\nsynced batch 11\n" in failed.stderr
    gate = show(project, "--check-cadence")
    assert "hourly: late since " in gate.stderr and "; failed at " in gate.stderr

    assert project.run("hourly", env=CADENCE).returncode == 0  # recovers
    release = tmp_path / "release"
    running = project.spawn(
        "bounded", "--seconds", "60", env={**CADENCE, "MC_TEST_RELEASE": str(release)}
    )
    try:
        project.wait_until_started(running)
        time.sleep(2.5)  # past expected_duration_max = 2 s
        gate = show(project, "--check-cadence")
        assert gate.returncode == 1
        (line, summary) = gate.stderr.splitlines()[:2]
        assert line.startswith("bounded: overrunning: running for ")
        assert line.endswith(", expected at most 2.0 s")
        assert summary.endswith("1 recurring command is late, failing or overrunning.")
        assert " [O] bounded " in show(project).stdout
    finally:
        release.touch()
        project.wait(running)
    assert running.returncode == 0
    assert show(project, "--check-cadence").returncode == 0


def test_a_late_spell_is_logged_once_when_two_processes_poll_together(project):
    fresh(project)
    assert project.run("hourly", env=CADENCE).returncode == 0
    backdate(project, "hourly", 2)
    first = project.race(2, "show_managed_commands", "--late", env=CADENCE)
    assert all(" [L] hourly " in r.stdout for r in first), first
    assert sum(r.stderr.count(LATE) for r in first) == 1, [r.stderr for r in first]
    again = project.race(2, "show_managed_commands", "--late", env=CADENCE)
    assert sum(r.stderr.count(LATE) for r in again) == 0
    # The next success ends the spell: the next lateness is logged again, once.
    assert project.run("hourly", env=CADENCE).returncode == 0
    backdate(project, "hourly", 2)
    later = project.race(2, "show_managed_commands", "--check-cadence", env=CADENCE)
    assert [r.returncode for r in later] == [1, 1]
    assert sum(r.stderr.count(LATE) for r in later) == 1
