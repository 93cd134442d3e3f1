from __future__ import annotations

import datetime
import os
import subprocess
import sys

from django.utils import timezone

from managed_commands.models import CommandExecution
from managed_commands.runs import lease


def holder(**fields):
    defaults = {
        "hostname": lease.hostname(),
        "pid": os.getpid(),
        "process_token": lease.own_process_token(),
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
    fresh = holder(hostname="elsewhere", heartbeat_at=now - datetime.timedelta(seconds=10))
    stale = holder(hostname="elsewhere", heartbeat_at=now - datetime.timedelta(seconds=100))
    assert lease.why_gone(fresh, 60, now) is None
    assert lease.why_gone(stale, 60, now) == (
        f"no heartbeat from process {os.getpid()} on elsewhere for 100 s (lease 60 s)"
    )
