"""``ManagedBaseCommand``: a ``BaseCommand`` whose every run is tracked."""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
from collections.abc import Sequence
from typing import Any, cast

from django.core.management.base import ALL_CHECKS, BaseCommand, CommandParser, OutputWrapper
from django.db import DatabaseError
from django.dispatch import Signal
from django.utils import timezone

from managed_commands import conf, definition
from managed_commands.definition import ensure_met
from managed_commands.exceptions import CommandTerminated, TrackingUnavailable
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import lease
from managed_commands.runs.capture import BoundedText, OutputCapture
from managed_commands.runs.claim import RunClaim, describe_holder
from managed_commands.runs.dberrors import unavailable
from managed_commands.runs.interrupts import InterruptGuard
from managed_commands.runs.lease import heartbeat
from managed_commands.runs.parameters import prepare
from managed_commands.runs.sanitize import clean_text, clip_name
from managed_commands.scopes import current_scope
from managed_commands.signals import command_finished, command_started

logger = logging.getLogger("managed_commands")
Status = CommandExecution.Status


class ManagedBaseCommand(BaseCommand):
    """A management command whose runs are timed, captured, guarded and recorded.

    Subclass it and implement ``handle()`` as for ``BaseCommand``. Every run,
    from ``manage.py`` or ``call_command()``, writes a ``CommandExecution`` row
    when it starts and completes it when it ends.

    Attributes:
        run_once: When True, a run is skipped (exit code 0, one-line notice)
            once a successful run exists in the current scope. ``--rerun``
            runs it again deliberately, recorded as a forced run.
        requires: Names of managed commands (as typed after ``manage.py``)
            that must have run successfully first, or ``"app_label.migration"``
            entries that must be applied. Otherwise the run is refused with
            ``RequirementNotMet`` (exit code 1) and ``handle()`` is not called.
        allow_concurrent: When False (the default), two runs of this command
            never overlap: a start waits for the running one (up to
            ``MANAGED_COMMANDS["WAIT_TIMEOUT"]`` seconds). run_once commands
            are always exclusive.
        sensitive_options: Option names stored redacted, on top of names that
            look secret (password, token, secret, key).
    """

    run_once: bool = False
    requires: Sequence[str] = ()
    allow_concurrent: bool = False
    sensitive_options: Sequence[str] = ()

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if self.run_once is True:
            parser.add_argument(
                "--rerun",
                action="store_true",
                help="Run again even though this run_once command already succeeded "
                "(recorded as a forced rerun).",
            )
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        spec = definition.read(type(self))
        using = conf.history_database()
        recorder = ExecutionRecorder(using)
        rerun = bool(options.pop("rerun", False))
        if self.requires_system_checks and not options.get("skip_checks"):
            # A project that fails its checks never starts a run: no claim, no row.
            try:
                self.check(**self._check_kwargs(options))
            except DatabaseError as exc:  # database checks (Django 6.1+) connect first
                raise unavailable(exc, using) from exc
            options["skip_checks"] = True
        with InterruptGuard() as guard:
            try:
                claimed = self._claim(spec, recorder, guard, rerun, args, options)
                if claimed is None:
                    return None
                execution, claim = claimed
                try:
                    return self._run(execution, recorder, claim, guard, args, options)
                finally:
                    claim.release()
            except CommandTerminated as exc:
                # Die by the signal, as the process would have without tracking.
                guard.resend(exc)
                raise

    def _check_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        if hasattr(BaseCommand, "get_check_kwargs"):  # Django 5.2+
            # django-stubs types the keys as optional; Django returns str keys.
            return cast(dict[str, Any], self.get_check_kwargs(options))
        if self.requires_system_checks == ALL_CHECKS:
            return {}
        return {"tags": self.requires_system_checks}

    def _claim(
        self,
        spec: definition.Definition,
        recorder: ExecutionRecorder,
        guard: InterruptGuard,
        rerun: bool,
        args: tuple[Any, ...],
        options: dict[str, Any],
    ) -> tuple[CommandExecution, RunClaim] | None:
        """Check requirements and take the lock; None when a run_once command is done."""
        notices = OutputWrapper(options["stdout"]) if options.get("stdout") else self.stdout
        warnings = OutputWrapper(options["stderr"]) if options.get("stderr") else self.stderr
        verbosity = int(options.get("verbosity", 1))

        def announce_wait(holder: CommandExecution) -> None:
            if verbosity:
                warnings.write(_waiting(spec.name, holder))

        try:
            scope = current_scope()
            # A plain repeatable command needs no read before its claim.
            wanted = {*spec.command_requires, *([spec.name] if spec.run_once and not rerun else [])}
            successes = recorder.last_successes(wanted, scope) if wanted else {}
            ensure_met(spec, successes)
            if spec.run_once and not rerun and spec.name in successes:
                if verbosity:
                    notices.write(_already_done(spec.name, successes[spec.name]))
                return None
            claim = RunClaim(
                recorder,
                name=clip_name(spec.name),
                scope=scope,
                exclusive=spec.run_once or not spec.allow_concurrent,
                run_once=spec.run_once and not rerun,
                wait_timeout=float(conf.get("WAIT_TIMEOUT")),
                lease_seconds=float(conf.get("LEASE_SECONDS")),
                guard=guard,
                on_wait=announce_wait,
            )
            execution = claim.acquire(
                {
                    "command_name": clip_name(spec.name),
                    "app_label": spec.app_label,
                    "scope": scope,
                    "run_once": spec.run_once,
                    "forced": rerun,
                    "parameters": prepare(
                        args, options, (*spec.sensitive_options, *conf.get("SENSITIVE_OPTIONS"))
                    ),
                    "source_hash": definition.source_hash(type(self).__module__),
                    "hostname": lease.hostname(),
                    "pid": os.getpid(),
                    "process_token": lease.own_process_token(),
                }
            )
            if execution is None:
                if verbosity:
                    done = recorder.last_successes([spec.name], scope)
                    notices.write(_already_done(spec.name, done.get(spec.name)))
                return None
        except DatabaseError as exc:
            raise unavailable(exc, recorder.using) from exc
        return execution, claim

    def _run(
        self,
        execution: CommandExecution,
        recorder: ExecutionRecorder,
        claim: RunClaim,
        guard: InterruptGuard,
        args: tuple[Any, ...],
        options: dict[str, Any],
    ) -> str | None:
        capture = OutputCapture(int(conf.get("OUTPUT_LIMIT")), conf.capture_logs_level())
        in_transaction = claim.in_callers_transaction
        beating = claim.key is not None and not in_transaction
        if beating:
            heartbeat.register(recorder.using, execution.pk, claim.lease_seconds)
        started = time.perf_counter()
        try:
            _send(command_started, self, execution)
            with capture.tee(self, options):
                result = super().execute(*args, **options)
        except BaseException as exc:
            self._finish(recorder, execution, capture, started, guard, exc, in_transaction)
            raise
        finally:
            if beating:
                heartbeat.unregister(execution.pk)
        self._finish(recorder, execution, capture, started, guard, None, in_transaction)
        return result

    def _finish(
        self,
        recorder: ExecutionRecorder,
        execution: CommandExecution,
        capture: OutputCapture,
        started: float,
        guard: InterruptGuard,
        exc: BaseException | None,
        in_transaction: bool,
    ) -> None:
        status, error_message, trace = _outcome(exc)
        fields = {
            "status": status,
            "success": status == Status.SUCCEEDED,
            "finished_at": timezone.now(),
            "duration": time.perf_counter() - started,
            "output": capture.stdout.getvalue(),
            "stderr": capture.stderr.getvalue(),
            "error_message": error_message,
            "traceback": trace,
        }
        with guard.deferred():
            try:
                recorder.finish(execution, **fields)
            except DatabaseError as first_error:
                self._finish_without_output(recorder, execution, fields, first_error, exc)
        if status == Status.FAILED and in_transaction:
            logger.warning(
                "Run #%s of '%s' failed inside an open transaction on database '%s': "
                "if that transaction rolls back, so does the record of this failure.",
                execution.pk,
                execution.command_name,
                recorder.using,
                exc_info=exc,
            )
        _send(command_finished, self, execution)

    def _finish_without_output(
        self,
        recorder: ExecutionRecorder,
        execution: CommandExecution,
        fields: dict[str, Any],
        first_error: DatabaseError,
        exc: BaseException | None,
    ) -> None:
        """Record the outcome even when the captured text could not be stored."""
        note = f"[managed_commands: output not stored: {type(first_error).__name__}: {first_error}]"
        fields.update(output=clean_text(note), stderr="", traceback="")
        try:
            recorder.finish(execution, **fields)
        except DatabaseError as second_error:
            logger.error(
                "Could not record the end of run #%s of '%s'",
                execution.pk,
                execution.command_name,
                exc_info=second_error,
            )
            if exc is None:
                raise TrackingUnavailable(
                    f"'{execution.command_name}' finished, but its run could not be recorded "
                    f"in database '{recorder.using}' ({second_error}); run #{execution.pk} "
                    f"will be marked abandoned. Check the database before running it again."
                ) from second_error


def _outcome(exc: BaseException | None) -> tuple[str, str, str]:
    """Return (status, error message, traceback) for a run that ended with ``exc``."""
    if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
        return Status.SUCCEEDED, "", ""
    trace = BoundedText(int(conf.get("OUTPUT_LIMIT")))
    trace.write("".join(traceback.format_exception(exc)))
    if isinstance(exc, CommandTerminated):
        return Status.INTERRUPTED, f"Terminated by {signal.Signals(exc.signum).name}.", ""
    if isinstance(exc, KeyboardInterrupt):
        return Status.INTERRUPTED, "Interrupted by SIGINT (KeyboardInterrupt).", ""
    message = clean_text(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, Exception):
        return Status.FAILED, message, trace.getvalue()
    return Status.INTERRUPTED, message, trace.getvalue()


def _send(signal_: Signal, command: BaseCommand, execution: CommandExecution) -> None:
    for receiver, response in signal_.send_robust(
        sender=type(command), command=command, execution=execution
    ):
        if isinstance(response, Exception):
            logger.error(
                "A receiver of managed_commands signal failed: %r", receiver, exc_info=response
            )


def _already_done(name: str, when: Any) -> str:
    if when is not None and timezone.is_aware(when):
        when = timezone.localtime(when)
    since = f" on {when:%Y-%m-%d %H:%M:%S}" if when is not None else ""
    return (
        f"Skipped '{name}': this run_once command already ran successfully{since}. "
        f"Pass --rerun to run it again."
    )


def _waiting(name: str, holder: CommandExecution) -> str:
    return (
        f"'{name}' is already running ({describe_holder(holder)}); "
        f"waiting for it to finish (up to {conf.get('WAIT_TIMEOUT')} s)."
    )
