"""Claim a run: one atomic step that both checks and takes a command's lock.

The claim is the run's own row: it is inserted with ``lock_key`` set, and a
unique index on ``lock_key`` lets exactly one row per (scope, command) hold
it, on every backend. The loser of the insert waits for the holder, takes
over from a dead one (closing its row as abandoned in the same step), or
gives up after the wait timeout. A run_once command checks for a success
again once it holds the lock, so no window lets two processes both run it.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
import time
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from django.db import DatabaseError, IntegrityError, connections
from django.utils import timezone

from managed_commands.exceptions import LockHeld
from managed_commands.formatting import local_time
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import lease
from managed_commands.runs.dberrors import after_reconnect, is_busy
from managed_commands.runs.interrupts import InterruptGuard

_FIRST_DELAY = 0.02
_MAX_DELAY = 0.5

# Locks this process holds, by key, with the thread holding each: a holder
# that is this very thread can only be a recursive call, which would wait forever.
_held_here: dict[str, int] = {}


@lru_cache(maxsize=1024)
def lock_key(name: str, scope: str) -> str:
    return hashlib.sha256(f"{scope}\0{name}".encode()).hexdigest()


def describe_holder(holder: CommandExecution) -> str:
    return (
        f"run #{holder.pk}, process {holder.pid} on host {holder.hostname or '?'}, "
        f"running since {local_time(holder.executed_at)}"
    )


class RunClaim:
    """Takes the lock of one command for one run (see the module docstring)."""

    def __init__(
        self,
        recorder: ExecutionRecorder,
        *,
        name: str,
        scope: str,
        exclusive: bool,
        run_once: bool,
        wait_timeout: float,
        lease_seconds: float,
        reconnect_deadline: float,
        guard: InterruptGuard,
        on_wait: Callable[[CommandExecution], None],
    ) -> None:
        self.recorder = recorder
        self.name = name
        self.scope = scope
        self.key = lock_key(name, scope) if exclusive else None
        self.run_once = run_once
        self.wait_timeout = wait_timeout
        self.lease_seconds = lease_seconds
        self.reconnect_deadline = reconnect_deadline
        self.guard = guard
        self.on_wait = on_wait

    def acquire(self, fields: dict[str, Any]) -> CommandExecution | None:
        """Insert the running row; return None when a run_once command turned out done."""
        deadline = time.monotonic() + self.wait_timeout
        delay = _FIRST_DELAY
        announced = False
        while True:
            attempted = timezone.now()
            try:
                with self.guard.deferred():
                    execution = self.recorder.claim(lock_key=self.key, **fields)
                break
            except IntegrityError:
                if self.key is None:
                    raise
                holder = self.recorder.holder(self.key)
                if holder is None:
                    continue  # released between our insert and our look
                reason = lease.why_gone(holder, self.lease_seconds)
                if reason:
                    with self.guard.deferred():
                        self.recorder.abandon(holder, reason)
                    continue
                self._refuse_recursion(holder)
                if not announced:
                    self.on_wait(holder)
                    announced = True
            except DatabaseError as exc:
                if is_busy(exc):
                    holder = None
                elif self.recorder.drop_broken_connection():
                    # A failover: the insert may have landed before the connection broke.
                    landed = after_reconnect(
                        self.recorder,
                        exc,
                        self.reconnect_deadline,
                        partial(self._own_row, fields, attempted),
                    )
                    if landed is not None:
                        execution = landed
                        break
                    continue
                else:
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self._gave_up(holder))
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY)
            if self.run_once and self.recorder.has_succeeded(self.name, self.scope):
                return None
        if self.run_once and self.recorder.has_succeeded(self.name, self.scope):
            with self.guard.deferred():
                self.recorder.discard(execution)
            return None
        if self.key:
            _held_here[self.key] = threading.get_ident()
        return execution

    def _own_row(
        self, fields: dict[str, Any], started: datetime.datetime
    ) -> CommandExecution | None:
        """The running row this very process inserted for this claim, if one landed."""
        if self.key in _held_here:
            return None  # another thread here holds it: this insert cannot have landed
        return self.recorder.running_row_of(
            self.name,
            self.scope,
            self.key,
            since=started,
            pid=fields["pid"],
            process_token=fields["process_token"],
            host_id=fields["host_id"],
        )

    def release(self) -> None:
        if self.key:
            _held_here.pop(self.key, None)

    @property
    def in_callers_transaction(self) -> bool:
        return connections[self.recorder.using].in_atomic_block

    def _refuse_recursion(self, holder: CommandExecution) -> None:
        recursive = _held_here.get(self.key or "") == threading.get_ident()
        if recursive and lease.is_this_process(holder):
            raise LockHeld(
                f"Cannot start '{self.name}': this process is already running it "
                f"({describe_holder(holder)}); a command cannot call itself."
            )

    def _gave_up(self, holder: CommandExecution | None) -> str:
        held_by = describe_holder(holder) if holder else "the database stayed locked"
        return (
            f"Cannot start '{self.name}': another run holds its lock ({held_by}). "
            f"Gave up after waiting {self.wait_timeout:g} s. Try again once it has finished, "
            f"or raise MANAGED_COMMANDS['WAIT_TIMEOUT']."
        )
