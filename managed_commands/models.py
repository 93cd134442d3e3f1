from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from managed_commands.formatting import local_time

__all__ = ["CommandCadence", "CommandExecution"]


class CommandExecution(models.Model):
    """One run of a management command, written when it starts and completed when it ends.

    The fields ``command_name``, ``executed_at``, ``success``, ``parameters``,
    ``output``, ``error_message``, ``duration`` and ``run_once`` keep the
    meaning they have in ``django_managed_commands``.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        INTERRUPTED = "interrupted", _("interrupted")
        ABANDONED = "abandoned", _("abandoned")
        FAKED = "faked", _("faked")
        #: An audited dry run that completed: its work was rolled back.
        DRY_RUN = "dry_run", _("dry run")
        #: Enqueued for a task worker (``enqueue_command``), not started yet.
        QUEUED = "queued", _("queued")

    command_name = models.CharField(
        _("command name"),
        max_length=255,
        help_text=_("The name typed after manage.py."),
    )
    app_label = models.CharField(_("app label"), max_length=100, blank=True)
    scope = models.CharField(
        _("scope"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("Tenant or other scope the run belongs to; empty when unscoped."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    success = models.BooleanField(
        _("success"),
        default=False,
        help_text=_("True only for a run that finished without an exception (or was faked)."),
    )
    run_once = models.BooleanField(_("run once"), default=False)
    forced = models.BooleanField(
        _("forced rerun"),
        default=False,
        help_text=_("A run_once command deliberately run again with --rerun."),
    )
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    output = models.TextField(_("output"), blank=True, default="")
    stderr = models.TextField(_("error output"), blank=True, default="")
    error_message = models.TextField(_("error message"), blank=True, default="")
    traceback = models.TextField(_("traceback"), blank=True, default="")
    executed_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    source_hash = models.CharField(
        _("source hash"),
        max_length=64,
        blank=True,
        help_text=_("SHA-256 of the command's source file when it ran."),
    )
    hostname = models.CharField(_("host"), max_length=255, blank=True)
    pid = models.PositiveIntegerField(_("process id"), null=True, blank=True)
    # Tells a live process from a later one that reuses its PID.
    process_token = models.CharField(max_length=64, blank=True, editable=False)
    # Boot, PID namespace and machine of the process: its PID means something
    # only to a process with the same identity ("" where it cannot be read).
    host_id = models.CharField(_("host identity"), max_length=128, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # Set while the run holds its command's lock, NULL once it ends: the unique
    # index admits one live holder per (scope, command) on every backend.
    lock_key = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # Set on the claim of a run_once run (not --rerun) and kept by its success,
    # cleared by any other end: the unique index admits one such row per
    # (scope, command), so it is the index that refuses a second run, not a read.
    once_key = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # Batch loops (ManagedBaseCommand.iterate): where each step got to, saved
    # with every batch, so that a run that did not finish can be resumed.
    cursor = models.JSONField(
        _("cursor"), null=True, blank=True, editable=False, encoder=DjangoJSONEncoder
    )
    # No constraint in the database: deleting old runs (pruning, by hand) never
    # fails because a later run resumed one.
    resumed_from = models.ForeignKey(
        "self",
        verbose_name=_("resumed from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        db_constraint=False,
    )
    at_least_once = models.BooleanField(
        _("at least once"),
        default=False,
        help_text=_(
            "Its batches commit on another database than its history: after an "
            "interruption, one batch may be processed again."
        ),
    )
    tick_count = models.BigIntegerField(_("items done"), null=True, blank=True)
    tick_total = models.BigIntegerField(_("items in all"), null=True, blank=True)
    tick_rate = models.FloatField(_("items per second"), null=True, blank=True)
    throttled_seconds = models.FloatField(_("seconds throttled"), null=True, blank=True)
    stop_requested_at = models.DateTimeField(_("stop requested at"), null=True, blank=True)
    dry_run = models.BooleanField(
        _("dry run"),
        default=False,
        help_text=_("Run with --dry-run: its work was rolled back, whatever its status."),
    )
    writes = models.JSONField(
        _("would have written"),
        null=True,
        blank=True,
        help_text=_("What a dry run rolled back: rows per table and kind, mails and tasks held."),
    )
    origin = models.JSONField(
        _("started by"),
        null=True,
        blank=True,
        help_text=_(
            "What started the run (trigger), the OS user, the Django user and the release."
        ),
    )
    metadata = models.JSONField(
        _("metadata"),
        null=True,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text=_("What MANAGED_COMMANDS['METADATA'] returned when the run started."),
    )
    enqueued_at = models.DateTimeField(
        _("enqueued at"),
        null=True,
        blank=True,
        help_text=_("When it was enqueued for a task worker (enqueue_command)."),
    )
    task_id = models.CharField(
        _("task id"),
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text=_("The id of the django.tasks task that runs it on a worker."),
    )

    class Meta:
        verbose_name = _("command execution")
        verbose_name_plural = _("command executions")
        ordering = ["-executed_at", "-id"]
        get_latest_by = "executed_at"
        permissions = [
            ("stop_commandexecution", _("Can ask a running command to stop")),
            ("run_managed_commands", _("Can run managed commands on a task worker")),
        ]
        # Each ends with the model's ordering (-executed_at, -id), so the seek
        # for a command's newest run (or newest success) reads one index entry
        # and never sorts that command's rows, however long its history.
        indexes = [
            models.Index(
                fields=["command_name", "scope", "-executed_at", "-id"],
                name="mc_exec_name_scope_start_id",
            ),
            models.Index(
                fields=["command_name", "scope", "success", "-executed_at", "-id"],
                name="mc_exec_name_scope_success_id",
            ),
        ]

    def __str__(self) -> str:
        """``fix_prices failed at 2026-12-07 14:05:12``: when the run ended, or since
        when it is queued or running."""
        where = f" [{self.scope}]" if self.scope else ""
        said = f"{self.command_name}{where} {self.get_status_display()}"
        if self.finished_at is None or self.status == self.Status.RUNNING:
            return f"{said} since {local_time(self.executed_at)}"
        return f"{said} at {local_time(self.finished_at)}"

    @property
    def outcome_unknown(self) -> bool:
        """True for a run that ended but whose end could not be recorded.

        Its process could not write its status (a constraint or trigger
        refused it, the disk was full...) but marked it ended: ``finished_at``
        set on a row still ``running`` that keeps its claim, so no start takes
        it over and runs the command again until someone checks its work
        (``run_pending_commands --fake``, or ``--rerun``).
        """
        return self.status == self.Status.RUNNING and self.finished_at is not None

    @classmethod
    def success_of(cls, status: str) -> bool:
        """The value of ``success`` for a run whose status is ``status``: true when it
        succeeded or was faked, false for any other.

        The one place ``success`` is derived: every write of a status sets it
        from here (it is kept because django-managed-commands' model has it and
        users filter on it; ``status`` says more).
        """
        return status in (cls.Status.SUCCEEDED, cls.Status.FAKED)


class CommandCadence(models.Model):
    """What the history of a recurring command (``expected_every``) cannot say, per scope.

    Written by the status read (``command_statuses()``) the first time it sees
    a command with a cadence in a scope, so that a command that never succeeded
    is late counted from then, not from the epoch; and by the first process to
    log a late spell (a conditional update of ``late_alerted_after``), so that
    two processes looking at once log it once.
    """

    command_name = models.CharField(_("command name"), max_length=255)
    scope = models.CharField(_("scope"), max_length=255, blank=True, default="")
    first_seen_at = models.DateTimeField(_("cadence first seen at"), default=timezone.now)
    # The id of the last success (0: none) after which the late spell was
    # logged: the next success starts another spell.
    late_alerted_after = models.BigIntegerField(_("late spell logged after run"), null=True)

    class Meta:
        verbose_name = _("command cadence")
        verbose_name_plural = _("command cadences")
        constraints = [
            models.UniqueConstraint(fields=["command_name", "scope"], name="mc_cadence_name_scope")
        ]

    def __str__(self) -> str:
        where = f" [{self.scope}]" if self.scope else ""
        return f"{self.command_name}{where} seen since {local_time(self.first_seen_at)}"
