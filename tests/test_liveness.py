from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from managed_commands import origin
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import claim
from tests import hooks


def holder(**fields):
    defaults = {
        "hostname": origin.hostname(),
        "pid": os.getpid(),
        "process_token": origin.own_process_token(),
        "host_id": origin.host_identity(),
        "executed_at": timezone.now(),
    }
    return CommandExecution(**{**defaults, **fields})


def test_this_process_is_alive():
    assert claim.why_gone(holder(), lease_seconds=0) is None


def test_a_dead_process_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    reason = claim.why_gone(holder(pid=child.pid, process_token="1"), lease_seconds=3600)
    assert reason == f"process {child.pid} on {origin.hostname()} is no longer running"


def test_a_reused_pid_is_gone():
    assert claim.why_gone(holder(process_token="not-the-start-time"), 3600) is not None


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: /proc still lists it, in state Z, once it has exited.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    token = origin.process_token(child.pid)
    assert not origin.process_is_running(child.pid, token)
    child.wait()


def test_other_hosts_are_judged_by_their_heartbeat():
    now = timezone.now()
    elsewhere = {"hostname": "elsewhere", "host_id": "another-boot/4026531836/another-machine"}
    fresh = holder(**elsewhere, heartbeat_at=now - datetime.timedelta(seconds=10))
    stale = holder(**elsewhere, heartbeat_at=now - datetime.timedelta(seconds=100))
    assert claim.why_gone(fresh, 60, now) is None
    assert claim.why_gone(stale, 60, now) == (
        f"no heartbeat from process {os.getpid()} on elsewhere for 100 s (lease 60 s)"
    )


def test_the_host_identity_names_this_boot_and_pid_namespace():
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.stat("/proc/self/ns/pid").st_ino
    assert origin.host_identity().startswith(f"{boot}/{namespace}/")


def test_a_holder_in_another_pid_namespace_is_judged_by_its_lease_not_its_pid():
    # Same hostname (host networking), its own PID namespace: our PID 1 or
    # its PID here means nothing about it, however alive that PID looks.
    boot, _, machine = origin.host_identity().split("/")
    other_namespace = f"{boot}/1/{machine}"
    now = timezone.now()
    silent = holder(pid=1, host_id=other_namespace, executed_at=now - datetime.timedelta(hours=1))
    beating = holder(pid=1, host_id=other_namespace, heartbeat_at=now)
    assert claim.why_gone(silent, 60, now).startswith("no heartbeat from process 1 on ")
    assert claim.why_gone(beating, 60, now) is None
    # A dead PID proves nothing either: only the lease can tell.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_pid = holder(pid=child.pid, host_id=other_namespace, heartbeat_at=now)
    assert claim.why_gone(dead_pid, 60) is None


def test_a_holder_without_a_host_identity_is_judged_by_its_lease():
    # Rows from before the identity existed, and hosts without /proc.
    now = timezone.now()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    unknown = holder(pid=child.pid, host_id="", heartbeat_at=now)
    assert claim.why_gone(unknown, 60, now) is None
    assert claim.why_gone(unknown, 60, now + datetime.timedelta(seconds=61)) is not None


@pytest.mark.django_db
def test_a_holder_on_a_sqlite_file_beats_beside_it_not_in_it():
    stale = timezone.now() - datetime.timedelta(minutes=10)
    row = CommandExecution.objects.create(
        command_name="x", hostname="elsewhere", host_id="other", pid=1, executed_at=stale
    )
    holder_row = CommandExecution.objects.get(pk=row.pk)  # loaded: knows its database
    path = claim.side_file("default", row.pk)
    if connection.vendor != "sqlite":
        # Servers take the beat in the row itself.
        assert path is None and claim.file_beat("default", row.pk) is None
        return
    database = Path(connection.settings_dict["NAME"]).resolve()
    assert path == database.parent / f".{database.name}.managed_commands" / f"{row.pk}.beat"
    assert claim.why_gone(holder_row, 60) is not None  # silent for ten minutes
    claim.touch_file(path)
    try:
        assert claim.why_gone(holder_row, 60) is None  # its file beat just now
    finally:
        claim.remove_file(path)
    assert not path.exists()


@pytest.fixture
def beat_after_each_end(monkeypatch):
    return hooks.beat_after_each_end(monkeypatch.setattr)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("argv", "status"), [(("noop_managed",), "succeeded"), (("fail", "--crash"), "failed")]
)
def test_a_beat_just_after_the_run_released_its_claim_judges_no_takeover(
    beat_after_each_end, caplog, argv, status
):
    with contextlib.suppress(ValueError):
        call_command(*argv, stdout=StringIO(), stderr=StringIO())
    assert len(beat_after_each_end) == 1  # the run did beat (outside a transaction)
    [row] = CommandExecution.objects.all()
    assert (row.status, row.lock_key) == (status, None)
    assert "no longer holds its claim" not in caplog.text


@pytest.mark.parametrize(
    ("argv", "status", "code"),
    [(("noop_managed",), "succeeded", 0), (("fail", "--crash"), "failed", 1)],
)
def test_a_real_process_whose_beat_races_its_own_end_reports_no_takeover(
    project, argv, status, code
):
    done = project.run(*argv, env={"MC_TEST_BEAT_AFTER_END": "1"})
    [row] = project.rows()
    assert done.returncode == code, done.stderr
    assert f"[test] beat after the end of run #{row['id']}" in done.stderr
    assert "no longer holds its claim" not in done.stderr
    assert (row["status"], row["lock_key"]) == (status, None)


@pytest.mark.django_db(transaction=True)
def test_a_beat_finding_the_claim_of_a_running_run_gone_stops_it(caplog):
    row = CommandExecution.objects.create(command_name="x", lock_key="k" * 64)
    lost = []
    claim.heartbeat.register("default", row.pk, "k" * 64, 3600, lambda: lost.append(row.pk))
    try:
        beat = claim.heartbeat._live[row.pk]
        assert ExecutionRecorder("default").abandon(row, "no heartbeat")
        claim.heartbeat._beat(row.pk, beat)
    finally:
        claim.heartbeat.unregister(row.pk)
    assert lost == [row.pk]
    assert f"run #{row.pk} no longer holds its claim: another process took it over" in caplog.text
