"""One tracked run, read top to bottom: check the project, claim the run, run it
with its output captured and its lease kept, then record how it ended.

``ManagedBaseCommand.execute()`` builds one ``TrackedRun`` per run and hands it
``BaseCommand.execute``; everything the run needs lives on this object, so the
command's own namespace stays free for the subclass.

A run enqueued for a task worker is written first as a ``queued`` row holding the
command's claim; the worker takes that row with a conditional update, so a
duplicate delivery takes nothing, and the run then continues on it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import Any, Protocol, cast
from weakref import WeakKeyDictionary

from django.core.management.base import ALL_CHECKS, BaseCommand, OutputWrapper
from django.db import DatabaseError
from django.dispatch import Signal
from django.utils import timezone

from managed_commands import conf
from managed_commands.conf import command_database, current_scope
from managed_commands.definition import (
    Definition,
    read,
    source_hash,
)
from managed_commands.exceptions import (
    ClaimLost,
    OutcomeUnknown,
    RunStopped,
    TimeLimitReached,
    TrackingUnavailable,
)
from managed_commands.formatting import local_time
from managed_commands.models import CommandExecution
from managed_commands.origin import (
    host_identity,
    hostname,
    metadata,
    origin,
    own_process_token,
    started_by,
)
from managed_commands.recorder import (
    ExecutionRecorder,
    error_code,
    history_recorder,
    retried,
    unavailable,
)
from managed_commands.requirements import ensure_met, names_replaced_by, newest_successes
from managed_commands.runs.batches import RunBatches
from managed_commands.runs.capture import (
    BoundedText,
    OutputCapture,
    Redactor,
    clean_text,
    clip_name,
    prepare,
    to_json,
)
from managed_commands.runs.claim import (
    RunClaim,
    describe_holder,
    heartbeat,
    in_test_transaction,
    keep_if_rolled_back,
    settle_advice,
)
from managed_commands.runs.dryrun import DryRun
from managed_commands.runs.limits import (
    InterruptGuard,
    StopAsRequested,
    StopAtTimeLimit,
    StopBySignal,
    StopOnTakeover,
    StopRun,
    database_timeouts,
    time_limit,
)
from managed_commands.signals import command_finished, command_started


class Managed(Protocol):
    """What a run sets on its command beyond ``BaseCommand``'s attributes: those of a
    ``ManagedBaseCommand``, whose module imports this one (so it is not named here)."""

    dry_run: bool
    recorded_run: CommandExecution | None


logger = logging.getLogger("managed_commands")
Status = CommandExecution.Status

#: ``BaseCommand.execute`` bound to the command: what a run calls once claimed.
Execute = Callable[..., str | None]

#: The run of each command instance while its handle() runs.
_RUNS: WeakKeyDictionary[BaseCommand, TrackedRun] = WeakKeyDictionary()

#: Around the ``handle()`` of a command without timeouts, time limit or dry run.
_NOTHING_AROUND: AbstractContextManager[None] = nullcontext()


def run_of(command: BaseCommand) -> TrackedRun:
    """The tracked run ``command`` is inside; a clear error outside one."""
    run = _RUNS.get(command)
    if run is None:
        raise TrackingUnavailable(
            f"{type(command).__module__}: iterate() saves its cursor on the run's record, so it "
            f"works inside a tracked run only. Run the command with manage.py or "
            f"call_command() rather than calling handle() directly."
        )
    return run


class TrackedRun:
    """What one run of a managed command needs, from its claim to its recorded end.

    Args:
        command: The command instance being run.
        definition: What its class declares, validated.
        args: The positional arguments given to ``execute()``.
        options: The options given to ``execute()``; never changed.
        queued: The queued row a task worker took for this run (see ``run_queued()``).
    """

    def __init__(
        self,
        command: BaseCommand,
        definition: Definition,
        args: tuple[Any, ...],
        options: dict[str, Any],
        *,
        queued: CommandExecution | None = None,
    ) -> None:
        self.command = command
        self.definition = definition
        self.args = args
        self.given = options
        self.rerun = bool(options.get("rerun", False))
        self.restart = bool(options.get("restart", False))
        self.verbosity = int(options.get("verbosity", 1))
        self.recorder = history_recorder()
        self.dry_run = (
            DryRun(
                definition.name,
                [command_database(), self.recorder.using],
                [CommandExecution._meta.db_table],
            )
            if definition.supports_dry_run and options.get("dry_run")
            else None
        )
        self.queued = queued
        # A worker's run is recorded in the scope it was enqueued in.
        self.scope = queued.scope if queued else current_scope()
        # On a task worker, the worker's own SIGTERM handler keeps its place:
        # the run's handler calls it, then stops the run.
        self.guard = InterruptGuard(chain=queued is not None)
        self.claim_of_run: RunClaim | None = None
        self.execution: CommandExecution | None = None
        self.capture = OutputCapture(conf.output_limit(), conf.capture_logs_level())
        self.redactor = Redactor(
            options,
            (*definition.sensitive_options, *conf.sensitive_options()),
            conf.redact_patterns(),
        )
        self.started = 0.0
        #: Whether ``finish()`` has begun recording the run's end.
        self.ended = False
        #: Whether the run started inside a transaction of the caller's.
        self.in_transaction = False
        self._batches: RunBatches | None = None

    def execute(self, call: Execute) -> str | None:
        """Run ``call`` (``BaseCommand.execute``) as a tracked run and return its result."""
        self.check_project()
        with self.guard:
            try:
                return self._claim_and_run(call)
            except StopBySignal as exc:
                # Die by the signal, as the process would have without tracking.
                self.guard.resend(exc)
                raise
            except StopAsRequested as exc:
                raise RunStopped(
                    f"'{self.definition.name}' (run #{self._row().pk}) stopped as asked: {exc}"
                ) from None
            except StopAtTimeLimit as exc:
                raise TimeLimitReached(
                    f"'{self.definition.name}' (run #{self._row().pk}): {exc}"
                ) from None

    def _claim_and_run(self, call: Execute) -> str | None:
        try:
            if not self._claim(self._take):
                return None
            try:
                return self.run(call)
            finally:
                self.release()
        except BaseException as exc:
            # Whatever stops the run once its row landed is its end: an error
            # of handle(), or a signal held back while the claim inserted the
            # row, raised as soon as the insert returned.
            if self.execution is not None and not self.ended:
                self.finish(exc)
            raise

    def _take(self, claim: RunClaim) -> None:
        """Insert the run's row holding the claim, or hold the queued row a worker took."""
        if self.queued is None:
            claim.acquire(self._start_fields())
        else:
            claim.adopt(self.queued)

    def enqueue(self) -> CommandExecution | None:
        """Claim a queued row for a task worker to run; None when the run_once command is done.

        The row holds the command's claim as a running one would (a second
        enqueue, or a start, is refused until a worker ran it, or until it
        waited ``QUEUE_TIMEOUT`` seconds for one). Raises ``LockHeld`` at once
        when another run holds the claim: an enqueue does not wait.
        """
        self.check_project()
        try:
            claimed = self._claim(lambda claim: claim.acquire(self._queued_fields()), wait=0)
            return self.execution if claimed else None
        finally:
            self.release()  # the worker holds it from now on, not this process

    def check_project(self) -> None:
        """Run the system checks first: a project that fails them never starts a run."""
        if not self.command.requires_system_checks or self.given.get("skip_checks"):
            return
        try:
            self.command.check(**self._check_kwargs())
        except DatabaseError as exc:  # database checks (Django 6.1+) connect first
            raise unavailable(exc, self.recorder.using) from exc

    def _claim(self, take: Callable[[RunClaim], None], wait: float | None = None) -> bool:
        """Check the requirements, then ``take`` the claim (waiting up to ``wait`` seconds,
        by default ``WAIT_TIMEOUT``, for a running holder); False when a run_once command
        is done.

        When the database stops answering (a failover, a restart), the start
        waits for it, for up to ``RECONNECT_TIMEOUT`` seconds, then fails closed.
        """
        deadline = time.monotonic() + conf.reconnect_timeout()
        try:
            return retried(
                self.recorder,
                lambda: self._check_and_take(take, wait, deadline),
                deadline,
                self._warn,
            )
        except DatabaseError as exc:
            raise unavailable(exc, self.recorder.using) from exc

    def _check_and_take(
        self, take: Callable[[RunClaim], None], wait: float | None, deadline: float
    ) -> bool:
        spec, scope = self.definition, self.scope
        # No read before the claim, but for ``requires`` and a rename: whether
        # a run_once command is done is for the claim's insert to tell (its once_key).
        once = spec.run_once and not self.rerun
        if spec.requires:
            required = {each: (each, *names_replaced_by(each)) for each in spec.command_requires}
            ensure_met(spec, newest_successes(self.recorder, required, scope) if required else {})
        if once and spec.replaces and not self.queued and self._done_under_old_name(scope):
            return False
        self.claim_of_run = RunClaim(
            self.recorder,
            name=clip_name(spec.name),
            scope=scope,
            exclusive=spec.run_once or not spec.allow_concurrent,
            run_once=once,
            wait_timeout=conf.wait_timeout() if wait is None else wait,
            reconnect_deadline=deadline,
            lease_seconds=(
                conf.lease_seconds() if spec.lease_seconds is None else spec.lease_seconds
            ),
            guard=self.guard,
            on_wait=self._announce_wait,
            on_reconnect=self._warn,
        )
        self.in_transaction = self.claim_of_run.in_callers_transaction
        try:
            take(self.claim_of_run)
        finally:
            # Also when a signal is raised as the insert returns: the run holds that row.
            self.execution = self.claim_of_run.row
            self.started = time.perf_counter()
        if self.execution is None:
            self._notice(_already_done(spec.name, self.claim_of_run.done_at))
            return False
        return True

    def _done_under_old_name(self, scope: str) -> bool:
        """Skip with a notice when a name this command replaces is done (``recorder.done()``).

        A read is enough here: the old name's code is gone, so no success of
        it can commit meanwhile (the claim's key is the new name's).
        """
        found = self.recorder.done(self.definition.replaced_names, scope)
        if not found:
            return False
        run = max(found.values(), key=lambda run: run.executed_at)
        self._notice(
            f"Skipped '{self.definition.name}': this run_once command already ran "
            f"successfully as '{run.command_name}' (which it replaces) on "
            f"{local_time(run.executed_at)}. Pass --rerun to run it again."
        )
        return True

    def run(self, call: Execute) -> str | None:
        """Call ``call`` with the output teed and the lease kept; record its success
        (``_claim_and_run`` records any other end)."""
        execution, claim = self._row(), self.claim_of_run
        assert claim is not None, "claim() comes before run()"
        # Inside the caller's transaction a beat would write on its connection
        # from another thread; the run's row is not committed there anyway.
        beating = claim.key is not None and not self.in_transaction
        _RUNS[self.command] = self
        try:
            if beating:
                heartbeat.register(
                    self.recorder.using,
                    execution.pk,
                    cast(str, claim.key),
                    claim.lease_seconds,
                    self._stop_taken_over,
                )
            # sys.stdout belongs to every thread of a threaded worker: capture
            # the command's own streams only there.
            process_streams = threading.current_thread() is threading.main_thread()
            tee = self.capture.tee(self.command, self.given, process_streams=process_streams)
            # The runs it starts in turn were started by its code, for the same user.
            with tee as streams, started_by("call_command"):
                _send(command_started, self.command, execution)
                options = {**self.given, "skip_checks": True, **streams}
                options.pop("rerun", None)
                options.pop("restart", None)
                with self._around_handle():
                    result = call(*self.args, **options)
        finally:
            _RUNS.pop(self.command, None)
            if beating:
                # Before the end is written, which releases the claim: a beat
                # after it would find the claim gone and judge it taken over.
                heartbeat.unregister(execution.pk)
        self.finish(None)
        if self.dry_run is not None and self.verbosity:
            self._stream("stdout").write(self.dry_run.describe())
        return result

    def _around_handle(self) -> AbstractContextManager[None]:
        """What wraps ``handle()``: the command's timeouts and time limit, a dry run's rollback.

        Most commands have none of them: those skip building the three blocks.
        """
        spec = self.definition
        if not spec.timeouts and spec.time_limit is None and self.dry_run is None:
            return _NOTHING_AROUND
        return self._limited()

    @contextmanager
    def _limited(self) -> Iterator[None]:
        spec = self.definition
        with (
            database_timeouts(spec),
            time_limit(spec, self.guard, self.command),
            self._rolled_back_if_dry(),
        ):
            yield

    @contextmanager
    def _rolled_back_if_dry(self) -> Iterator[None]:
        """A dry run's work is rolled back at its end; ``command.dry_run`` says it is one."""
        if self.dry_run is None:
            yield
            return
        managed = cast(Managed, self.command)
        managed.dry_run = True
        try:
            with self.dry_run.rolled_back():
                yield
        finally:
            del managed.dry_run

    def batch_loops(self) -> RunBatches:
        """The cursor and progress of this run's ``iterate()`` loops."""
        if self._batches is None:
            self._batches = RunBatches(
                self.recorder,
                self._row(),
                self._lock_key(),
                resumes=self.definition.resumes and not self.restart,
                guard=self.guard,
                verbosity=self.verbosity,
                dry_run=self.dry_run,
            )
        return self._batches

    def finish(self, exc: BaseException | None) -> None:
        """Complete the run's row with its outcome and output, then send ``command_finished``."""
        self.ended = True
        self.guard.ending()
        execution = self._row()
        status, error_message, trace = _outcome(exc)
        if self.dry_run is not None and status == Status.SUCCEEDED:
            status = Status.DRY_RUN
        fields = {
            "status": status,
            "success": CommandExecution.success_of(status),
            "finished_at": timezone.now(),
            "duration": time.perf_counter() - self.started,
            **self.redactor.stored(
                output=self.capture.stdout,
                stderr=self.capture.stderr,
                error_message=error_message,
                traceback=trace,
            ),
        }
        if self.dry_run is not None:
            fields["writes"] = self.dry_run.summary()
        with self.guard.deferred():
            try:
                held = self._write_end(fields)
            except DatabaseError as error:
                held = self._write_less(fields, error, exc)
        if not held:
            self._report_taken_over(status, fields)
        if status != Status.SUCCEEDED and self.in_transaction:
            self._keep_failure(status, exc)
        cast(Managed, self.command).recorded_run = execution
        _send(command_finished, self.command, execution)

    def _keep_failure(self, status: str, exc: BaseException | None) -> None:
        """A run that did not succeed inside the caller's transaction outlives its rollback."""
        execution, using = self._row(), self.recorder.using
        if not in_test_transaction(using):
            keep_if_rolled_back(execution, using)
            return
        logger.warning(
            "Run #%s of '%s' ended %s inside a test's transaction on database '%s': "
            "its record rolls back with the test.",
            execution.pk,
            execution.command_name,
            status,
            using,
            exc_info=exc,
        )

    def _write_end(self, fields: dict[str, Any]) -> bool:
        """Write the run's end; False when its claim was taken over.

        When the connection broke (a failover, a restart, an idle-connection
        killer), reconnect and try again for up to ``RECONNECT_TIMEOUT``
        seconds, reading first whether the write that failed landed after all.
        """
        execution, key = self._row(), self._lock_key()
        return retried(
            self.recorder,
            lambda: self.recorder.finish(execution, key, **fields),
            time.monotonic() + conf.reconnect_timeout(),
            self._warn,
            landed=lambda: self.recorder.end_state(execution, key),
        )

    def _report_taken_over(self, status: str, fields: dict[str, Any]) -> None:
        """Note a late end on the abandoned row, then raise ``ClaimLost`` (exit code 5)."""
        execution = self._row()
        successor = self.recorder.successor(execution)
        by = f" by run #{successor}" if successor else ""
        note = (
            f"Ended after its claim was taken over{by}: {status} after {fields['duration']:.1f} s."
        )
        try:
            self.recorder.note_late_end(
                execution,
                note,
                output=fields["output"],
                stderr=fields["stderr"],
                traceback=fields["traceback"],
            )
            execution.refresh_from_db(using=self.recorder.using)
        except DatabaseError:
            logger.exception("Could not note the late end of run #%s", execution.pk)
        _send(command_finished, self.command, execution)
        raise ClaimLost(
            f"'{self.definition.name}' ended ({status}) after its claim was taken over{by}: "
            f"it was silent for longer than its lease of {self._lease_seconds():g} s (paused, "
            f"or cut off from the database), so another process presumed it gone. Run "
            f"#{execution.pk} stays 'abandoned', with this end noted on it; check what the "
            f"other run did before running '{self.definition.name}' again."
        )

    def _stop_taken_over(self) -> None:
        """Called by the heartbeat thread: the claim is gone, so stop the run now."""
        self.guard.stop(StopOnTakeover())

    def _lock_key(self) -> str | None:
        return self.claim_of_run.key if self.claim_of_run else None

    def _lease_seconds(self) -> float:
        return self.claim_of_run.lease_seconds if self.claim_of_run else conf.lease_seconds()

    def release(self) -> None:
        """Forget the lock this thread held (the row's end already freed it in the database)."""
        if self.claim_of_run is not None:
            self.claim_of_run.release()

    def _row(self) -> CommandExecution:
        assert self.execution is not None, "claim() comes before run() and finish()"
        return self.execution

    def _start_fields(self) -> dict[str, Any]:
        """The row of a run starting in this process."""
        return {
            **self._declared_fields(),
            "hostname": hostname(),
            "pid": os.getpid(),
            "process_token": own_process_token(),
            "host_id": host_identity(),
        }

    def _queued_fields(self) -> dict[str, Any]:
        """The row of a run queued for a task worker: the worker that takes it writes
        its own process."""
        now = timezone.now()
        return {
            **self._declared_fields(),
            "status": Status.QUEUED,
            "enqueued_at": now,
            "executed_at": now,
            "hostname": "",
            "pid": None,
            "process_token": "",
            "host_id": "",
        }

    def _declared_fields(self) -> dict[str, Any]:
        spec = self.definition
        return {
            "command_name": clip_name(spec.name),
            "app_label": spec.app_label,
            "scope": self.scope,
            "run_once": spec.run_once,
            "forced": self.rerun,
            "parameters": prepare(
                self.args, self.given, (*spec.sensitive_options, *conf.sensitive_options())
            ),
            "source_hash": source_hash(type(self.command).__module__),
            "dry_run": self.dry_run is not None,
            "origin": origin(),
            # Stored as JSON whatever the hook returned: what JSON cannot hold becomes text.
            "metadata": to_json(metadata(self.command)),
        }

    def _check_kwargs(self) -> dict[str, Any]:
        command = self.command
        if hasattr(BaseCommand, "get_check_kwargs"):  # Django 5.2+
            # django-stubs types the keys as optional; Django returns str keys.
            return cast(dict[str, Any], command.get_check_kwargs(self.given))
        if command.requires_system_checks == ALL_CHECKS:
            return {}
        return {"tags": command.requires_system_checks}

    def _notice(self, message: str) -> None:
        if self.verbosity:
            self._stream("stdout").write(message)

    def _warn(self, message: str) -> None:
        if self.verbosity:
            self._stream("stderr").write(message)

    def _announce_wait(self, holder: CommandExecution) -> None:
        if self.verbosity:
            self._stream("stderr").write(
                f"'{self.definition.name}' is already running ({describe_holder(holder)}); "
                f"waiting for it to finish (up to {conf.wait_timeout():g} s)."
            )

    def _stream(self, name: str) -> OutputWrapper:
        """The stream ``BaseCommand.execute()`` would write ``name`` to, before it runs."""
        given = self.given.get(name)
        return OutputWrapper(given) if given else cast(OutputWrapper, getattr(self.command, name))

    def _write_less(
        self, fields: dict[str, Any], error: DatabaseError, exc: BaseException | None
    ) -> bool:
        """The end was refused: write the outcome with less, so it still lands.

        First with a note naming the error in place of the output (its class
        and code only: its text may quote the refused row, which would be
        refused again), then with no texts at all. A run that ended well whose
        outcome cannot be written even so is marked ended (``outcome_unknown``)
        and raises ``OutcomeUnknown`` (exit code 8); any other run's own
        exception tells how it ended, and its row is taken over as abandoned.
        """
        execution, key = self._row(), self._lock_key()
        note = f"[managed_commands: output not stored: {error_code(error)}]"
        for texts in (
            {"output": note, "stderr": "", "traceback": ""},
            {"output": "", "stderr": "", "traceback": "", "error_message": ""},
        ):
            try:
                return self.recorder.finish(execution, key, **{**fields, **texts})
            except DatabaseError as refused:
                error = refused
        if exc is not None and not fields["success"]:
            logger.error(
                "Could not record the end of run #%s of '%s'",
                execution.pk,
                execution.command_name,
                exc_info=error,
            )
            return True
        try:
            marked = self.recorder.mark_ended(
                execution, key, finished_at=fields["finished_at"], duration=fields["duration"]
            )
        except DatabaseError:
            marked = False
        raise OutcomeUnknown(
            _outcome_unknown(execution, error_code(error), self.recorder.using, marked)
        ) from error


def _outcome(exc: BaseException | None) -> tuple[str, str, str | BoundedText]:
    """Return (status, error message, traceback) for a run that ended with ``exc``.

    A traceback comes bounded, for ``finish`` to mask secrets across its cut too.
    """
    if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
        return Status.SUCCEEDED, "", ""
    if isinstance(exc, StopRun):
        return Status.INTERRUPTED, str(exc), ""
    if isinstance(exc, KeyboardInterrupt):
        return Status.INTERRUPTED, "Interrupted by SIGINT (KeyboardInterrupt).", ""
    trace = BoundedText(conf.output_limit())
    trace.write("".join(traceback.format_exception(exc)))
    message = clean_text(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, Exception):
        return Status.FAILED, message, trace
    return Status.INTERRUPTED, message, trace


def _send(signal_: Signal, command: BaseCommand, execution: CommandExecution) -> None:
    for receiver, response in signal_.send_robust(
        sender=type(command), command=command, execution=execution
    ):
        if isinstance(response, Exception):
            logger.error(
                "A receiver of managed_commands signal failed: %r", receiver, exc_info=response
            )


def _already_done(name: str, when: Any) -> str:
    since = f" on {local_time(when)}" if when is not None else ""
    return (
        f"Skipped '{name}': this run_once command already ran successfully{since}. "
        f"Pass --rerun to run it again."
    )


def _outcome_unknown(run: CommandExecution, cause: str, using: str, marked: bool) -> str:
    """What a run that ended but could not record its end says (``OutcomeUnknown``)."""
    name = run.command_name
    said = (
        f"'{name}' ran to its end, but its end could not be recorded in database "
        f"'{using}' ({cause}). Check the database. Run #{run.pk}"
    )
    if not run.run_once:
        return f"{said} stays 'running', its outcome unknown."
    if marked:
        return (
            f"{said} stays 'running', marked as ended with its outcome unknown, and keeps "
            f"its claim, so '{name}' is not run again until you settle it: {settle_advice(run)}"
        )
    return (
        f"{said} could not even be marked as ended: it stays 'running', and once its process "
        f"is found gone the next start runs '{name}' again. Before that, {settle_advice(run)}"
    )


def take_queued(
    recorder: ExecutionRecorder, row: CommandExecution, worker_id: str, task_id: str
) -> CommandExecution | None:
    """Take queued ``row`` for this worker process; None when it is no longer queued.

    Its ``origin`` gains the worker's id (``"worker"``).
    """
    now = timezone.now()
    return recorder.start_queued(
        row.pk,
        origin={**(row.origin or {}), "worker": worker_id},
        executed_at=now,
        heartbeat_at=now,
        hostname=hostname(),
        pid=os.getpid(),
        process_token=own_process_token(),
        host_id=host_identity(),
        task_id=task_id[:255],
    )


def run_queued(
    command: BaseCommand,
    row: CommandExecution,
    args: tuple[Any, ...],
    options: dict[str, Any],
) -> str | None:
    """Run ``command`` on a task worker as queued run ``row``, which ``take_queued()`` took.

    ``args`` and ``options`` are parsed as ``call_command()`` hands them to ``execute()``.
    """
    run = TrackedRun(command, read(type(command)), args, options, queued=row)
    return run.execute(partial(BaseCommand.execute, command))
