"""Run managed commands on task workers, through Django's Tasks framework.

``enqueue_command()`` claims a run for a worker (a ``queued`` row holding
the command's claim, so run_once and exclusive commands stay exactly once),
then enqueues one ``django.tasks`` task once the surrounding transaction
commits. The task, ``run_enqueued_command``, starts that row with a
conditional update (a duplicate delivery starts nothing) and runs the
command through ``call_command()``: capture, ``requires``, the heartbeat
lease and the recorded end are those of any run.

``django.tasks`` ships with Django 6.0; on Django 5.2 the ``django-tasks``
backport gives the same API (``pip install "managed-commands[tasks]"``).

A queued run whose task its backend reports failed, or no longer knows, is
recovered by the next start, enqueue or ``--check`` that finds it
(``runs.claim.lost_task()``, asked by ``why_gone()``), rather than after
``QUEUE_TIMEOUT``: the claim is the truth, the backend's word ends the wait early.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from managed_commands import definition
from managed_commands.base import ManagedBaseCommand
from managed_commands.conf import current_scope, tasks_api
from managed_commands.exceptions import LockHeld
from managed_commands.executor import CommandExecutor
from managed_commands.loader import EVERYTHING, Selection
from managed_commands.models import CommandExecution
from managed_commands.origin import hostname, started_by
from managed_commands.recorder import ExecutionRecorder, history_recorder
from managed_commands.runs import StopRun, TrackedRun, call_arguments, run_queued, take_queued
from managed_commands.signals import run_ended
from managed_commands.status import CommandState

__all__ = [
    "WorkerStopped",
    "enqueue_again",
    "enqueue_command",
    "enqueue_pending",
    "run_enqueued_command",
]

logger = logging.getLogger("managed_commands")

INSTALL_HINT = (
    "Running managed commands on task workers needs django.tasks: Django 6.0 or later, or "
    "on Django 5.2 the django-tasks backport (pip install 'managed-commands[tasks]'), and "
    "a TASKS backend with a worker, for example django-tasks-db."
)


class WorkerStopped(Exception):
    """A run on a task worker was stopped by a signal; its row is ``interrupted``.

    Raised by the task in place of the run's own stop, a ``BaseException`` that
    some pools take for a crash of the worker (Celery's solo pool).
    """


def _task(**settings: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@task(**settings)`` of the tasks API there is; the plain function without one."""
    api = tasks_api()
    if api is None:
        return lambda function: function
    decorator: Callable[[Callable[..., Any]], Any] = api.task(**settings)
    return decorator


@_task(takes_context=True)
def run_enqueued_command(
    context: Any,
    execution_id: int,
    name: str,
    args: list[Any],
    options: dict[str, Any],
    chain: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The task: start queued run ``execution_id`` on this worker and run the command.

    Returns:
        ``{"execution_id", "status", "started"}``: the run's id and status
        as recorded, and False for ``started`` when the row was no longer
        queued (a duplicate delivery, or a run recovered meanwhile), in which
        case nothing ran.
    """
    recorder = history_recorder()
    result = context.task_result
    worker = result.worker_ids[-1] if result.worker_ids else f"{hostname()}:{result.id}"
    found = recorder.executions.filter(pk=execution_id).first()
    row = found and take_queued(recorder, found, worker_id=worker, task_id=str(result.id))
    if not row:
        status = found.status if found else None
        return {"execution_id": execution_id, "status": status, "started": False}
    with _in_scope(row.scope):
        try:
            command = _managed_command(name)
            parsed = _parsed(command, tuple(args), options)
        except CommandError as exc:
            # Its code changed since the enqueue: nothing can run, so the run ends now.
            _fail(recorder, row, f"Not started: {exc}")
            return {
                "execution_id": row.pk,
                "status": CommandExecution.Status.FAILED,
                "started": False,
            }
        try:
            run_queued(command, row, *parsed)
        except Exception:  # noqa: BLE001 - the run's row holds the failure
            logger.info("Run #%s of '%s' failed on a task worker", row.pk, name)
        except StopRun as exc:
            # A signal the worker's own handler saw first: the row says
            # interrupted, the worker ends as it chose; no BaseException of
            # ours may escape to its pool.
            raise WorkerStopped(f"Run #{row.pk} of '{name}' stopped: {exc}") from None
        row.refresh_from_db(using=recorder.using)
        if row.success and chain is not None:
            _release_runnable(chain, name, row.origin or {})
    return {"execution_id": row.pk, "status": row.status, "started": True}


def enqueue_command(
    name: str,
    *args: Any,
    triggered_by: Any = None,
    trigger: str = "enqueue_command",
    queue_name: str | None = None,
    backend: str | None = None,
    **options: Any,
) -> CommandExecution | None:
    """Claim a run of managed command ``name`` for a task worker and enqueue its task.

    The arguments are those of ``call_command()``, checked against the
    command's own parser now, so a bad option fails here rather than on a
    worker later; they must be JSON (they travel through the task backend).
    The task is enqueued once the surrounding transaction (on the history's
    database) commits.

    Args:
        triggered_by: The Django user who asked, recorded on the run.
        trigger: What asked, recorded as the run's ``origin["trigger"]`` (``"admin"``).
        queue_name: The task queue (default: the task's, ``"default"``).
        backend: The ``TASKS`` alias (default: ``"default"``).

    Returns:
        The ``queued`` row, or None when a run_once command is already done
        (nothing is enqueued).

    Raises:
        ImproperlyConfigured: neither ``django.tasks`` nor the backport is installed.
        CommandError: ``name`` is no managed command, or its arguments are wrong.
        LockHeld: another run holds the command's claim (queued or running).
    """
    with started_by(trigger, triggered_by):
        return _enqueue(name, args, options, queue_name, backend, chain=None)


def enqueue_again(
    execution: CommandExecution,
    *,
    triggered_by: Any = None,
    trigger: str = "enqueue_again",
    queue_name: str | None = None,
    backend: str | None = None,
) -> CommandExecution | None:
    """Enqueue the command of run ``execution`` again, with the arguments that run was given.

    The arguments are read back from the run's ``parameters``. A run_once
    command runs again only while it is not done (``--rerun`` is never added).

    Args:
        triggered_by: The Django user who asked, recorded on the run.
        trigger: What asked, recorded as the run's ``origin["trigger"]`` (``"admin"``).

    Returns:
        The ``queued`` row, or None when its run_once command is done.

    Raises:
        CommandError: the run's parameters cannot be repeated (a secret among
            them was redacted), or it ran in another scope; and as ``enqueue_command``.
    """
    name = execution.command_name
    if execution.scope != current_scope():
        raise CommandError(
            f"Run #{execution.pk} of '{name}' ran in scope '{execution.scope}': "
            f"run it again from there."
        )
    parser = _managed_command(name).create_parser("", name)
    args, options = call_arguments(name, parser, execution.parameters)
    with started_by(trigger, triggered_by):
        return _enqueue(name, tuple(args), options, queue_name, backend, chain=None)


def enqueue_pending(
    selection: Selection = EVERYTHING,
    *,
    triggered_by: Any = None,
    trigger: str = "run_pending_commands --enqueue",
    queue_name: str | None = None,
    backend: str | None = None,
) -> tuple[list[CommandExecution], list[str]]:
    """Enqueue the pending run_once commands whose requirements are met, in run order.

    Each of their tasks, once its run succeeded, enqueues the commands of
    ``selection`` that became runnable: a chain of ``requires`` runs in order
    across workers, each command after what it requires.

    Args:
        triggered_by: The Django user who asked, recorded on the runs.
        trigger: What asked, recorded as the runs' ``origin["trigger"]`` (``"admin"``).

    Returns:
        The queued rows, and the names of the pending commands left to be
        enqueued by the tasks (their requirements are not met yet).
    """
    executor = CommandExecutor()
    plan = executor.plan(selection=selection)
    chain = _chain(selection, queue_name, backend)
    rows = []
    runnable = _runnable(executor, plan)
    with started_by(trigger, triggered_by):
        for command in runnable:
            row = _enqueue_once(command.name, chain)
            if row is not None:
                rows.append(row)
    # A runnable command not enqueued here was taken by another run (or by this
    # chain, on a fast worker): it does not wait for its requirements.
    return rows, [command.name for command in plan if command not in runnable]


def _enqueue(
    name: str,
    args: tuple[Any, ...],
    options: dict[str, Any],
    queue_name: str | None,
    backend: str | None,
    chain: dict[str, Any] | None,
) -> CommandExecution | None:
    if tasks_api() is None:
        raise ImproperlyConfigured(INSTALL_HINT)
    command = _managed_command(name)
    parsed_args, parsed_options = _parsed(command, args, options)
    # The streams a caller gives are for this process's notices, not the worker's.
    sent = {key: value for key, value in options.items() if key not in ("stdout", "stderr")}
    try:
        payload = json.loads(json.dumps([list(args), sent]))
    except (TypeError, ValueError) as exc:
        raise CommandError(
            f"Cannot enqueue '{name}': its arguments travel to the worker as JSON, and {exc}."
        ) from None
    where = {"queue_name": queue_name, "backend": backend}
    # Before the claim: an unknown backend or queue is an error with nothing written.
    task = run_enqueued_command.using(**{k: v for k, v in where.items() if v is not None})
    task.get_backend().validate_task(task)
    run = TrackedRun(command, definition.read(type(command)), parsed_args, parsed_options)
    row = run.enqueue()
    if row is None:
        return None
    recorder = history_recorder()
    # Before its task exists, so no worker can be starting it: the backend to ask
    # whether that task failed (``runs.claim.lost_task()``).
    recorder.add_origin(row, task_backend=task.backend)

    def send() -> None:
        try:
            result = task.enqueue(row.pk, name, *payload, chain=chain)
        except Exception as exc:
            # No task will start it: free its claim now rather than after QUEUE_TIMEOUT
            # (unless a worker started it all the same: a broker that took the task).
            _fail(recorder, row, f"Could not enqueue its task: {type(exc).__name__}: {exc}")
            raise
        # Where the backend ran it already (ImmediateBackend), the worker set it too.
        recorder.executions.filter(pk=row.pk, task_id__isnull=True).update(task_id=str(result.id))

    transaction.on_commit(send, using=recorder.using)
    return row


def _enqueue_once(name: str, chain: dict[str, Any]) -> CommandExecution | None:
    """Enqueue ``name`` for a chain, on its queue and backend, unless another run holds it
    (queued, or running)."""
    try:
        return _enqueue(name, (), {}, chain.get("queue_name"), chain.get("backend"), chain=chain)
    except LockHeld:
        return None  # another task of the chain enqueued it first


def _runnable(executor: CommandExecutor, plan: list[definition.Definition]) -> list[Any]:
    """The commands of ``plan`` whose required commands are done and migrations applied."""
    statuses = executor.statuses
    return [
        command
        for command in plan
        if not statuses[command.name].unapplied_migrations
        and all(
            name in statuses and statuses[name].state == CommandState.DONE
            for name in command.command_requires
        )
    ]


def _release_runnable(chain: dict[str, Any], succeeded: str, origin: dict[str, Any]) -> None:
    """After ``succeeded`` succeeded on a worker: enqueue what it made runnable, on the
    chain's queue and backend.

    Only the commands that require it: a pending command that was runnable
    already (one that failed, or was interrupted) is not retried by every
    later success of the chain. They were asked for with the run that
    succeeded: its ``origin`` gives their trigger and Django user. Never
    fails the task.
    """
    try:
        executor = CommandExecutor()
        trigger = origin.get("trigger") or "run_pending_commands --enqueue"
        with started_by(trigger, origin.get("django_user") or None):
            for command in _runnable(executor, executor.plan(selection=_selection(chain))):
                if succeeded in command.command_requires:
                    _enqueue_once(command.name, chain)
    except Exception:
        logger.exception("Could not enqueue the managed commands that became runnable")


def _chain(selection: Selection, queue_name: str | None, backend: str | None) -> dict[str, Any]:
    """What each task of a chain carries: the selection, and where its followers go."""
    return {
        "phase": selection.phase,
        "tags": sorted(selection.tags),
        "queue_name": queue_name,
        "backend": backend,
    }


def _selection(chain: dict[str, Any]) -> Selection:
    return Selection(chain.get("phase"), frozenset(chain.get("tags") or ()))


def _fail(recorder: ExecutionRecorder, row: CommandExecution, message: str) -> None:
    """End queued (or just taken) ``row`` ``failed`` with ``message``, never run, and alert
    it as any failed run (``signals.run_ended()``): only the write that closes it does,
    so it is alerted once."""
    if recorder.close_holder(row, CommandExecution.Status.FAILED, message):
        run_ended(row, status=CommandExecution.Status.FAILED, error=message)


def _managed_command(name: str) -> ManagedBaseCommand:
    app_name = get_commands().get(name)
    if app_name is None:
        raise CommandError(f"Cannot enqueue '{name}': no installed app has a command by that name.")
    command = load_command_class(app_name, name) if isinstance(app_name, str) else app_name
    if not isinstance(command, ManagedBaseCommand):
        raise CommandError(
            f"Cannot enqueue '{name}': it is not a managed command (ManagedBaseCommand), "
            f"so its run on a worker could not be recorded."
        )
    return command


def _parsed(
    command: BaseCommand, args: tuple[Any, ...], options: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``args`` and ``options`` as ``call_command()`` would hand them to ``execute()``.

    Parsed by ``call_command()`` itself, with the command's ``execute`` replaced
    for the call: the same errors, the same defaults, and nothing run.
    """
    seen: dict[str, Any] = {}

    def capture(*parsed_args: Any, **parsed_options: Any) -> None:
        seen.update(args=parsed_args, options=parsed_options)

    command.execute = capture  # type: ignore[method-assign]
    try:
        call_command(command, *args, **options)
    except TypeError as exc:  # call_command's word for an unknown option
        name = definition.command_name(type(command))
        raise CommandError(f"Cannot enqueue '{name}': {exc}") from None
    finally:
        del command.execute
    return seen["args"], seen["options"]


@contextmanager
def _in_scope(scope: str) -> Iterator[None]:
    """Under django-tenants, select the tenant schema the run was enqueued in."""
    if not scope or not apps.is_installed("django_tenants"):
        yield
        return
    from django_tenants.utils import schema_context  # optional: only with django-tenants

    with schema_context(scope):
        yield
