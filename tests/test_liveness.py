from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from managed_commands.models import CommandExecution
from managed_commands.runs import beatfile, lease


def holder(**fields):
    defaults = {
        "hostname": lease.hostname(),
        "pid": os.getpid(),
        "process_token": lease.own_process_token(),
        "host_id": lease.host_identity(),
        "executed_at": timezone.now(),
    }
    return CommandExecution(**{**defaults, **fields})


def test_this_process_is_alive():
    assert lease.why_gone(holder(), lease_seconds=0) is None


def test_a_dead_process_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    reason = lease.why_gone(holder(pid=child.pid, process_token="1"), lease_seconds=3600)
    assert reason == f"process {child.pid} on {lease.hostname()} is no longer running"


def test_a_reused_pid_is_gone():
    assert lease.why_gone(holder(process_token="not-the-start-time"), 3600) is not None


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: /proc still lists it, in state Z, once it has exited.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    token = lease.process_token(child.pid)
    assert not lease.process_is_running(child.pid, token)
    child.wait()


def test_other_hosts_are_judged_by_their_heartbeat():
    now = timezone.now()
    elsewhere = {"hostname": "elsewhere", "host_id": "another-boot/4026531836/another-machine"}
    fresh = holder(**elsewhere, heartbeat_at=now - datetime.timedelta(seconds=10))
    stale = holder(**elsewhere, heartbeat_at=now - datetime.timedelta(seconds=100))
    assert lease.why_gone(fresh, 60, now) is None
    assert lease.why_gone(stale, 60, now) == (
        f"no heartbeat from process {os.getpid()} on elsewhere for 100 s (lease 60 s)"
    )


def test_the_host_identity_names_this_boot_and_pid_namespace():
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.stat("/proc/self/ns/pid").st_ino
    assert lease.host_identity().startswith(f"{boot}/{namespace}/")


def test_a_holder_in_another_pid_namespace_is_judged_by_its_lease_not_its_pid():
    # Same hostname (host networking), its own PID namespace: our PID 1 or
    # its PID here means nothing about it, however alive that PID looks.
    boot, _, machine = lease.host_identity().split("/")
    other_namespace = f"{boot}/1/{machine}"
    now = timezone.now()
    silent = holder(pid=1, host_id=other_namespace, executed_at=now - datetime.timedelta(hours=1))
    beating = holder(pid=1, host_id=other_namespace, heartbeat_at=now)
    assert lease.why_gone(silent, 60, now).startswith("no heartbeat from process 1 on ")
    assert lease.why_gone(beating, 60, now) is None
    # A dead PID proves nothing either: only the lease can tell.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_pid = holder(pid=child.pid, host_id=other_namespace, heartbeat_at=now)
    assert lease.why_gone(dead_pid, 60) is None


def test_a_holder_without_a_host_identity_is_judged_by_its_lease():
    # Rows from before the identity existed, and hosts without /proc.
    now = timezone.now()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    unknown = holder(pid=child.pid, host_id="", heartbeat_at=now)
    assert lease.why_gone(unknown, 60, now) is None
    assert lease.why_gone(unknown, 60, now + datetime.timedelta(seconds=61)) is not None


@pytest.mark.django_db
def test_a_holder_on_a_sqlite_file_beats_beside_it_not_in_it():
    stale = timezone.now() - datetime.timedelta(minutes=10)
    row = CommandExecution.objects.create(
        command_name="x", hostname="elsewhere", host_id="other", pid=1, executed_at=stale
    )
    holder_row = CommandExecution.objects.get(pk=row.pk)  # loaded: knows its database
    path = beatfile.path_for("default", row.pk)
    if connection.vendor != "sqlite":
        # Servers take the beat in the row itself.
        assert path is None and beatfile.last_beat("default", row.pk) is None
        return
    database = Path(connection.settings_dict["NAME"]).resolve()
    assert path == database.parent / f".{database.name}.managed_commands" / f"{row.pk}.beat"
    assert lease.why_gone(holder_row, 60) is not None  # silent for ten minutes
    beatfile.touch(path)
    try:
        assert lease.why_gone(holder_row, 60) is None  # its file beat just now
    finally:
        beatfile.remove(path)
    assert not path.exists()
