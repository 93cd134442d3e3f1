"""Claim a run: one atomic step that both checks and takes a command's lock.

The claim is the run's own row: it is inserted with ``lock_key`` set, and a
unique index on ``lock_key`` lets exactly one row per (scope, command) hold
it, on every backend. A run_once run (not ``--rerun``) also sets ``once_key``,
which its success keeps and any other end clears: a second unique index, so a
done command refuses the insert itself, and no read before or after it can
miss a success committing in between.

The loser of the insert reads the rows holding either key (one statement) to
learn which refused it: a success holding ``once_key`` means done (skip, by
``recorder.makes_done()``); a row holding ``lock_key`` is a holder to wait
for, take over from when dead (closing its row as abandoned and freeing both
keys in the same step), or give up on after the wait timeout.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import DatabaseError, IntegrityError, connections
from django.utils import timezone

from managed_commands.exceptions import LockHeld, OutcomeUnknown
from managed_commands.formatting import local_time
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder, command_key, makes_done
from managed_commands.runs import lease
from managed_commands.runs.dberrors import after_reconnect, is_busy
from managed_commands.runs.interrupts import InterruptGuard

_FIRST_DELAY = 0.02
_MAX_DELAY = 0.5

# Locks this process holds, by key, with the thread holding each: a holder
# that is this very thread can only be a recursive call, which would wait forever.
_held_here: dict[str, int] = {}


#: The ``lock_key`` (and ``once_key``) of a command ``name`` in ``scope``.
lock_key = command_key


def describe_holder(holder: CommandExecution) -> str:
    if holder.status == CommandExecution.Status.QUEUED:
        enqueued = local_time(holder.enqueued_at or holder.executed_at)
        return f"run #{holder.pk}, enqueued for a task worker on {enqueued}"
    return (
        f"run #{holder.pk}, process {holder.pid} on host {holder.hostname or '?'}, "
        f"running since {local_time(holder.executed_at)}"
    )


def settle_advice(run: CommandExecution) -> str:
    """What to do about run_once ``run``, which ended but whose end could not be recorded."""
    name = run.command_name
    return (
        f"check whether its work is complete; if it is, mark it done with 'python manage.py "
        f"run_pending_commands --fake {name}', if not, run it again with 'python manage.py "
        f"{name} --rerun'."
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
        on_reconnect: Callable[[str], None],
    ) -> None:
        self.recorder = recorder
        self.name = name
        self.scope = scope
        self.key = lock_key(name, scope) if exclusive else None
        self.run_once = run_once
        #: When the run_once command turned out done: the start of the run holding its key.
        self.done_at: datetime.datetime | None = None
        self.wait_timeout = wait_timeout
        self.lease_seconds = lease_seconds
        self.reconnect_deadline = reconnect_deadline
        self.guard = guard
        self.on_wait = on_wait
        self.on_reconnect = on_reconnect
        #: The row holding the claim, from the moment its insert landed (or once adopted).
        self.row: CommandExecution | None = None

    def acquire(self, fields: dict[str, Any]) -> None:
        """Insert the running row as ``row``; ``row`` stays None when a run_once command
        turned out done (``done_at`` then tells since when).

        A signal held back during the insert is raised once it returns: the row
        it inserted is ``row`` by then, for the run to end it.
        """
        deadline = time.monotonic() + self.wait_timeout
        delay = _FIRST_DELAY
        announced = False
        keys = {"lock_key": self.key}
        if self.run_once:
            keys["once_key"] = self.key
        while True:
            attempted = timezone.now()
            try:
                with self.guard.deferred():
                    self.row = self.recorder.claim(**keys, **fields)
                break
            except IntegrityError:
                if self.key is None:
                    raise
                holder, done = self._refused_by(self.key)
                if done is not None:
                    self.done_at = done.executed_at
                    return
                if holder is None:
                    if time.monotonic() < deadline:
                        continue  # released between our insert and our look
                    raise  # refused by no key we know of
                if holder.outcome_unknown and self.run_once:
                    raise OutcomeUnknown(
                        f"'{self.name}' was not run: its run #{holder.pk} (process "
                        f"{holder.pid} on host {holder.hostname or '?'}, started "
                        f"{local_time(holder.executed_at)}) ended, but its end could not be "
                        f"recorded, so its outcome is unknown: {settle_advice(holder)}"
                    ) from None
                reason = (
                    "it ended, but its end could not be recorded"
                    if holder.outcome_unknown  # a repeatable command, or --rerun: run it again
                    else lease.why_gone(holder, self.lease_seconds)
                )
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
                        self.on_reconnect,
                    )
                    if landed is not None:
                        self.row = landed
                        break
                    continue
                else:
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self._gave_up(holder))
            # The next insert tells whether the holder succeeded meanwhile.
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY)
        if self.key:
            _held_here[self.key] = threading.get_ident()

    def adopt(self, row: CommandExecution) -> None:
        """Hold ``row``, a queued row a task worker started for this run (see runs.queued)."""
        if self.key:
            _held_here[self.key] = threading.get_ident()
        self.row = row

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

    def _refused_by(self, key: str) -> tuple[CommandExecution | None, CommandExecution | None]:
        """Read which key refused the insert, in one statement: (the row holding
        ``lock_key``, the success that makes the command done), each None when no
        row holds it."""
        holder = done = None
        for row in self.recorder.key_holders(key, once=self.run_once):
            if row.lock_key == key:
                holder = row
            elif makes_done(row, key):
                done = row
            elif row.once_key == key:
                # A finished run that did not succeed holds no once_key; one
                # written by hand (or by an older version) must not block forever.
                with self.guard.deferred():
                    self.recorder.free_once_key(row)
        return holder, done

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
        if not self.wait_timeout:
            return (
                f"Cannot start '{self.name}': another run holds its lock ({held_by}). "
                f"Try again once it has finished."
            )
        return (
            f"Cannot start '{self.name}': another run holds its lock ({held_by}). "
            f"Gave up after waiting {self.wait_timeout:g} s. Try again once it has finished, "
            f"or raise MANAGED_COMMANDS['WAIT_TIMEOUT']."
        )
