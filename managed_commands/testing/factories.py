"""factory-boy factories for ``CommandExecution`` rows: start a test from a given history.

Needs the ``managed_commands[testing]`` extra. Rows are written to the history
database (``MANAGED_COMMANDS["DATABASE"]`` or the routers' choice) in the
current scope, exactly where a run would look for them.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from django.db.models import Manager
from django.utils import timezone
from factory.declarations import LazyAttribute, LazyFunction, Sequence, Trait
from factory.django import DjangoModelFactory

from managed_commands import conf
from managed_commands.conf import current_scope
from managed_commands.models import CommandExecution
from managed_commands.origin import host_identity, hostname, own_process_token
from managed_commands.recorder import command_key

__all__ = ["CommandExecutionFactory"]

Status = CommandExecution.Status


def _started(row: Any) -> datetime.datetime:
    # A finished row ends now, so it sorts before any run the test starts next.
    return timezone.now() - datetime.timedelta(seconds=row.duration or 0)


def _holds_once_key(row: dict[str, Any]) -> bool:
    """Whether a real run would have left ``row`` holding its command's ``once_key``."""
    # A success takes it when free, forced or not; a live run only when not forced.
    live = bool(row.get("lock_key")) and not row.get("forced")
    return bool(row.get("run_once")) and bool(row.get("success") or live)


def _cursor(rows_done: int) -> dict[str, Any]:
    """The cursor a loop paging by pk saves after rows 1 to ``rows_done``, as ``iterate()`` does."""
    after = [rows_done] if rows_done else None
    return {"main": {"columns": ["pk"], "after": after, "count": rows_done, "done": False}}


class CommandExecutionFactory(DjangoModelFactory[CommandExecution]):
    """A finished, successful run; the traits give the other outcomes.

    Traits (pass ``name=True``):
        failed: ended with an exception (``error_message`` and ``traceback`` set).
        running: started now by this very process, not finished, so it looks alive.
        holding_lock: running, and holding the command's lock as a live run
            does: a new run of that command waits for it (up to ``WAIT_TIMEOUT``).
        faked: marked done without running (``status=faked``).
        interrupted: stopped by Ctrl-C.
        abandoned: its process died and a later run closed it.
        dry: a completed dry run (``--dry-run``): status ``dry_run``, nothing
            written, the command not done by it.
        resumable: interrupted in its batch loop (``iterate()``) with its cursor
            saved: ``rows_done`` rows (pk 1 to ``rows_done``) of ``rows_total``
            done, so the next run of a run_once command (or one with
            ``resume = True``) continues after pk ``rows_done``. Both are
            parameters (100 and 200 unless given).

    ``once_key``: a run_once command is done when a row holds its
    ``once_key`` (the unique key its claim refuses to insert past), so rows
    built here get one where a real run would have it. A successful (or
    faked) row with ``run_once=True`` takes the command's key, and so does a
    ``holding_lock`` one not ``forced`` (a live run_once run holds both
    keys), unless a row of that command and scope holds it already: a second
    successful row then is recorded without it instead of failing with
    ``IntegrityError``, as ``record_command_execution`` does. Pass
    ``once_key=None`` to build a row without it whatever it is, or
    ``once_key=command_key(name, scope)`` to demand it. Note that ``run_once``
    defaults to False here; ``command_history`` takes it from the command.

    Example::

        CommandExecutionFactory(command_name="load_catalog", run_once=True)
        CommandExecutionFactory(command_name="sync_supplier", failed=True)
        CommandExecutionFactory(command_name="backfill", resumable=True, rows_done=500)
    """

    class Meta:
        model = CommandExecution

    class Params:
        failed = Trait(
            status=Status.FAILED,
            error_message="CommandError: it failed",
            traceback="Traceback (most recent call last):\nCommandError: it failed\n",
        )
        running = Trait(
            status=Status.RUNNING,
            executed_at=LazyFunction(timezone.now),
            finished_at=None,
            duration=None,
            pid=LazyFunction(os.getpid),
            process_token=LazyFunction(own_process_token),
            host_id=LazyFunction(host_identity),
        )
        holding_lock = Trait(
            running=True,
            lock_key=LazyAttribute(lambda row: command_key(row.command_name, row.scope)),
        )
        faked = Trait(status=Status.FAKED, duration=0.0)
        interrupted = Trait(
            status=Status.INTERRUPTED,
            error_message="Interrupted by SIGINT (KeyboardInterrupt).",
        )
        abandoned = Trait(
            status=Status.ABANDONED,
            error_message="Abandoned: its process is no longer running.",
        )
        dry = Trait(
            status=Status.DRY_RUN,
            dry_run=True,
            writes=LazyAttribute(
                lambda row: {"rows": {}, "statements": 0, "mails": 0, "tasks": 0, "batches": 0}
            ),
        )
        rows_done = 100
        rows_total = 200
        resumable = Trait(
            interrupted=True,
            cursor=LazyAttribute(lambda row: _cursor(row.rows_done)),
            tick_count=LazyAttribute(lambda row: row.rows_done),
            tick_total=LazyAttribute(lambda row: row.rows_total),
        )

    command_name = Sequence(lambda n: f"command_{n}")
    scope = LazyFunction(current_scope)
    status = Status.SUCCEEDED
    success = LazyAttribute(lambda row: CommandExecution.success_of(row.status))
    duration = 1.0
    executed_at = LazyAttribute(_started)
    finished_at = LazyAttribute(
        lambda row: row.executed_at + datetime.timedelta(seconds=row.duration or 0)
    )
    hostname = LazyFunction(hostname)

    @classmethod
    def _create(cls, model_class: type[CommandExecution], *args: Any, **kwargs: Any) -> Any:
        manager = cls._get_manager(model_class)
        if "once_key" not in kwargs and _holds_once_key(kwargs):
            key = command_key(kwargs["command_name"], kwargs["scope"])
            if not manager.filter(once_key=key).exists():
                kwargs["once_key"] = key
        return manager.create(*args, **kwargs)

    @classmethod
    def _get_manager(cls, model_class: type[CommandExecution]) -> Manager[CommandExecution]:
        manager: Manager[CommandExecution] = model_class._default_manager
        return manager.db_manager(conf.history_database())
