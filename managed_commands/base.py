"""``ManagedBaseCommand``: a ``BaseCommand`` whose every run is tracked."""

from __future__ import annotations

import datetime
from argparse import ArgumentError
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Model, QuerySet

from managed_commands import definition
from managed_commands.exceptions import TrackingUnavailable
from managed_commands.origin import started_by

if TYPE_CHECKING:  # the model exists only once the app is installed
    from managed_commands.models import CommandExecution

__all__ = ["ManagedBaseCommand"]


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
        lease_seconds: Seconds without a heartbeat after which a run of this
            command, held by a process that cannot be checked directly (another
            host, container or PID namespace), is presumed gone and taken over.
            None (the default) uses ``MANAGED_COMMANDS["LEASE_SECONDS"]``. Make
            it longer than the longest pause a holder may go through (a paused
            VM, a network partition).
        resume: When True, the batch loops of a run (``iterate()``) continue
            from the cursor saved by the last run that did not finish. Always so
            for a run_once command; ``--restart`` starts over.
        supports_dry_run: When True, the command takes ``--dry-run``: an audited
            run whose database work is rolled back at its end and whose row
            (status ``dry_run``) says what it would have written. It never
            makes a run_once command done nor meets a ``requires``.
        phase: ``"post_migrate"`` (the default) or ``"pre_migrate"``: when a
            deploy runs it. ``run_pending_commands --phase pre_migrate`` runs
            the pending pre_migrate commands before ``migrate`` (for example a
            backfill that a migration adding a constraint needs, see
            ``managed_commands.requirements.RequireCommand``); a plain
            ``run_pending_commands`` after ``migrate`` runs whatever is left.
            A pre_migrate command may require migrations, but no post_migrate
            command.
        tags: Names (a set of non-empty strings) that ``run_pending_commands
            --tag`` and ``show_managed_commands --tag`` select commands by,
            for example ``{"search"}``.
        replaces: The names this command had before a rename or a move to
            another app (``"old_name"`` or ``"other_app.old_name"``), as a
            squashed migration's ``replaces``: their history counts as its
            own for run_once, ``requires`` and the pending state, so a renamed
            command does not run again.
        dry_run: True while a ``--dry-run`` run is under way: effects outside
            the database (HTTP calls, files, caches) are the command's own to skip.
        statement_timeout: Seconds any one statement of ``handle()`` may run
            on the command's database before the database stops it; the run
            then fails (``StatementTimedOut``, exit code 1) naming the timeout.
            PostgreSQL: ``SET LOCAL statement_timeout`` in each transaction.
            MariaDB: ``max_statement_time``; MySQL: ``max_execution_time``
            (SELECT statements only). None (the default): no limit.
        lock_timeout: Seconds any one statement of ``handle()`` may wait for a
            lock (a row another transaction holds) before it fails the run
            the same way. PostgreSQL: ``SET LOCAL lock_timeout``; MariaDB and
            MySQL: ``innodb_lock_wait_timeout`` (whole seconds, rounded up).
            Both timeouts apply for the length of ``handle()`` only, and
            SQLite has neither (check ``managed_commands.W002``).
        time_limit: Seconds the whole run may take; then it is stopped as
            SIGTERM would stop it, recorded ``interrupted`` with the reason
            (``TimeLimitReached``, exit code 7), on every database: a statement
            running at that moment is cut short. A run outside the main
            thread cannot be stopped; its stderr says so. None (the
            default): no limit.
        expected_every: How often a recurring command is expected to succeed
            (a ``timedelta`` or seconds): it is ``late`` once no successful run
            started within ``expected_every + expected_grace`` of the last one
            (or of when the cadence was first seen). None (the default): no cadence.
        expected_grace: The slack after ``expected_every`` (a ``timedelta`` or
            seconds); None (the default): a tenth of ``expected_every``, at
            least a minute.
        expected_duration_max: How long one run may take before it is
            ``overrunning`` (a ``timedelta`` or seconds); None: no bound.
        recorded_run: Set by the run: the ``CommandExecution`` row of this
            instance's latest run once it has ended; None before, or when a
            run_once command found itself done.
    """

    run_once: bool = False
    requires: Sequence[str] = ()
    allow_concurrent: bool = False
    sensitive_options: Sequence[str] = ()
    lease_seconds: float | None = None
    resume: bool = False
    supports_dry_run: bool = False
    phase: str = "post_migrate"
    tags: Collection[str] = frozenset()
    replaces: Sequence[str] = ()
    dry_run: bool = False
    statement_timeout: float | None = None
    lock_timeout: float | None = None
    time_limit: float | None = None
    expected_every: datetime.timedelta | float | None = None
    expected_grace: datetime.timedelta | float | None = None
    expected_duration_max: datetime.timedelta | float | None = None
    recorded_run: CommandExecution | None = None

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if self.run_once is True:
            parser.add_argument(
                "--rerun",
                action="store_true",
                help="Run again even though this run_once command already succeeded "
                "(recorded as a forced rerun).",
            )
        if self.run_once is True or self.resume is True:
            parser.add_argument(
                "--restart",
                action="store_true",
                help="Start the batch loops over, ignoring the cursor saved by an earlier "
                "run that did not finish.",
            )
        if self.supports_dry_run is True:
            # A --dry-run of the command's own (from add_arguments) audits too.
            with suppress(ArgumentError):
                parser.add_argument(
                    "--dry-run",
                    action="store_true",
                    help="Run, then roll the database work back; the run is recorded as a "
                    "dry run with what it would have written.",
                )
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        with started_by("manage.py"):
            super().run_from_argv(argv)

    def execute(self, *args: Any, **options: Any) -> str | None:
        if not apps.is_installed("managed_commands"):
            raise TrackingUnavailable(
                f"'{definition.command_name(type(self))}' was not run: it is a managed command, "
                f"but 'managed_commands' is not in INSTALLED_APPS, so its run cannot be "
                f"recorded. Add 'managed_commands' to INSTALLED_APPS, then run "
                f"'python manage.py migrate managed_commands'."
            )
        # Imported here rather than at the top: the run loads the model, which
        # exists only once the app is installed, and ``--help`` never needs it.
        from managed_commands.runs import TrackedRun

        run = TrackedRun(self, definition.read(type(self)), args, options)
        return run.execute(super().execute)

    def iterate(self, queryset: QuerySet[Any], **options: Any) -> Iterator[Any]:
        """Yield each row of ``queryset``, in batches that commit with the run's cursor.

        Takes the options of ``iterate_batches()`` and yields the rows of each
        batch one by one.
        """
        for batch in self.iterate_batches(queryset, **options):
            yield from batch

    def iterate_batches(
        self,
        queryset: QuerySet[Any],
        *,
        batch_size: int = 500,
        step: str | None = None,
        total: int | None = None,
        throttle: Callable[[], bool] | None = None,
        backoff: float = 5.0,
        cursor: Sequence[str] = ("pk",),
    ) -> Iterator[list[Model]]:
        """Yield ``queryset`` as lists of up to ``batch_size`` rows, each in its transaction.

        Rows are paged by ``cursor`` (unique, never NULL columns; keyset, not
        OFFSET). After each batch the position and the progress are saved on
        the run's row, in the batch's own transaction when the history lives
        on the queryset's database: a run that ends early (killed, stopped,
        failed) resumes after the last committed batch (run_once commands, or
        ``resume = True``). Leaving the loop early rolls the batch in progress
        back. Between batches the loop waits ``backoff`` seconds while
        ``throttle()`` returns true, and stops when ``stop_managed_command``
        asked it to. ``step`` names each loop of a ``handle()`` with several.
        ``total`` is the loop's number of rows in all, those done by runs it
        resumes included (by default counted at the start of the loop).
        """
        # Imported here: the run module loads the model, which needs the app registry.
        from managed_commands.runs import run_of

        return (
            run_of(self)
            .batch_loops()
            .batches(
                queryset,
                batch_size=batch_size,
                step=step,
                total=total,
                throttle=throttle,
                backoff=backoff,
                cursor=cursor,
            )
        )
