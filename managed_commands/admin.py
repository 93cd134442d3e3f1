"""Read-only admin for the run history, plus an overview of every managed command.

Every value shown comes from a command's output or arguments, so it is always
escaped (``format_html``, template autoescaping), never marked safe. A user
with ``stop_commandexecution`` can ask running runs to stop, as
``stop_managed_command`` does; a user with ``run_managed_commands`` can enqueue
runs for a task worker: a run again with the parameters it had, or the pending
commands. The page of each command, with a form of its arguments, and the live
page of a run are the console's (``managed_commands.console``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.management.base import CommandError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from managed_commands import conf, tenants
from managed_commands.console import ADMIN_TRIGGER, ConsoleAdmin
from managed_commands.exceptions import NotMultiTenant
from managed_commands.formatting import describe, eta_seconds, human_duration, pretty_json
from managed_commands.listing import cadence_text
from managed_commands.loader import discover, forget_changed_commands
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import ask_to_stop
from managed_commands.status import (
    CommandState,
    alert_late,
    command_statuses,
    describe_gone,
    run_gone,
)


class CommandNameFilter(admin.SimpleListFilter):
    """Filter by command, offering the discovered commands.

    Unlike a field filter it needs no ``SELECT DISTINCT`` over the whole history.
    """

    title = _("command")
    parameter_name = "command_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        found = discover()
        names = {*found.commands, *found.invalid}
        chosen = self.value()
        if chosen:
            # Keep a command that is no longer installed visible once chosen.
            names.add(chosen)
        return [(name, name) for name in sorted(names)]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[CommandExecution]
    ) -> QuerySet[CommandExecution]:
        chosen = self.value()
        return queryset.filter(command_name=chosen) if chosen else queryset


class ScopeFilter(admin.SimpleListFilter):
    """Filter by scope (tenant); shown only when the history holds more than one scope.

    With django-tenants the choices are the tenants; otherwise the scopes found
    in the history (one ``SELECT DISTINCT``, only for projects with a SCOPE setting).
    """

    title = _("scope")
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        try:
            scopes = {tenant.schema_name for tenant in tenants.all_tenants()}
        except NotMultiTenant:
            if not conf.scope_setting_is_set():
                return []
            scopes = set(
                model_admin.get_queryset(request)
                .order_by()
                .values_list("scope", flat=True)
                .distinct()
            )
        chosen = self.value()
        if chosen is not None:
            scopes.add(chosen)
        return [(scope, scope or _("(none)")) for scope in sorted(scopes)]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[CommandExecution]
    ) -> QuerySet[CommandExecution]:
        chosen = self.value()
        return queryset if chosen is None else queryset.filter(scope=chosen)


class ReleaseFilter(admin.SimpleListFilter):
    """Filter by the release a run was started from (``origin["release"]``).

    Offers the releases of the newest runs: one read of a bounded number of
    rows along the start-time index, never a ``SELECT DISTINCT`` over the history.
    """

    title = _("release")
    parameter_name = "release"
    #: How many of the newest runs the offered releases are read from.
    recent_runs = 500

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = (
            model_admin.get_queryset(request)
            .order_by("-executed_at", "-id")
            .values_list("origin__release", flat=True)[: self.recent_runs]
        )
        releases = {str(release) for release in recent if release}
        chosen = self.value()
        if chosen:
            releases.add(chosen)
        return [(release, release) for release in sorted(releases)]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[CommandExecution]
    ) -> QuerySet[CommandExecution]:
        chosen = self.value()
        return queryset.filter(origin__release=chosen) if chosen else queryset


def started_by_text(execution: CommandExecution) -> str:
    """``manage.py by alice (deploy) · a1b2c3d``: what started a run, who, from which release."""
    origin = execution.origin or {}
    if not origin:
        return ""
    text = str(origin.get("trigger") or "")
    people = [origin.get("django_user"), origin.get("os_user")]
    named = [str(person) for person in people if person]
    if named:
        text += f" by {named[0]}" + (f" ({named[1]})" if len(named) > 1 else "")
    if origin.get("release"):
        text += f" · {origin['release']}"
    return text


def status_badge(execution: CommandExecution) -> SafeString:
    """The run's status as a coloured label (the text is the translated status); a run
    recorded running whose process is gone says so, and when it was last heard from."""
    gone = run_gone(execution)
    if gone:
        return format_html(
            '<span class="mc-badge mc-status-gone">{}</span> <span class="mc-gone">{}</span>',
            _("gone"),
            describe_gone(execution, gone),
        )
    return format_html(
        '<span class="mc-badge mc-status-{}">{}</span>',
        execution.status,
        execution.get_status_display(),
    )


def progress_text(execution: CommandExecution | None) -> str:
    """``62 % (1,240 / 2,000), ETA 4 min``, or "" for a run without batch loops; an ETA
    only while it runs (not once it ended, nor when its process is gone)."""
    if execution is None or execution.tick_count is None:
        return ""
    running = execution.status == CommandExecution.Status.RUNNING and not run_gone(execution)
    rate = execution.tick_rate if running else None
    return describe(execution.tick_count, execution.tick_total, rate)


#: Seconds between two reloads of the page of a running run.
REFRESH_SECONDS = 5

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec
    from django.utils.functional import _StrPromise


@admin.register(CommandExecution)
class CommandExecutionAdmin(ConsoleAdmin):
    """History of runs: filterable, searchable, read-only for everyone; a user with
    ``stop_commandexecution`` may ask running runs to stop, one with
    ``run_managed_commands`` may enqueue runs for a task worker."""

    list_display = [
        "command_name",
        "status_label",
        "executed_at",
        "duration_label",
        "progress_label",
        "hostname",
        "started_by_label",
    ]
    list_filter = [
        "status",
        CommandNameFilter,
        "run_once",
        "dry_run",
        ("executed_at", admin.DateFieldListFilter),
        ReleaseFilter,
        ScopeFilter,
    ]
    search_fields = ["command_name", "error_message", "output"]
    actions = ["request_stop", "run_again"]
    ordering = ["-executed_at", "-pk"]
    list_per_page = 50
    # The filtered count is needed for pagination; the unfiltered one is not.
    show_full_result_count = False
    if django.VERSION >= (5, 0):
        # Facet counts would group the whole history on each page view.
        show_facets = admin.ShowFacets.NEVER
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("command_name", "app_label", "scope"),
                    ("status_label", "success", "run_once", "forced"),
                    ("executed_at", "finished_at", "duration_label"),
                    ("hostname", "pid", "heartbeat_at"),
                    "source_hash",
                ]
            },
        ),
        (
            _("Started by"),
            {
                "fields": [
                    ("trigger_label", "django_user_label", "os_user_label"),
                    "release_label",
                    "metadata_block",
                ]
            },
        ),
        (_("Arguments"), {"fields": ["parameters_block"]}),
        (_("Output"), {"fields": ["output_block", "stderr_block"]}),
        (_("Error"), {"fields": ["error_message_block", "traceback_block"]}),
    ]

    #: The fields of a run's batch loops, shown after the first fieldset when any is set.
    progress_fieldset: tuple[str | _StrPromise, _FieldOpts] = (
        _("Progress"),
        {
            "fields": [
                "progress_label",
                ("tick_count", "tick_total"),
                ("rate_label", "eta_label", "throttled_label"),
                ("resumed_from_link", "at_least_once"),
                "stop_requested_at",
            ]
        },
    )

    #: What a dry run rolled back, shown after the first fieldset for a dry run.
    dry_run_fieldset: tuple[str | _StrPromise, _FieldOpts] = (
        _("Dry run"),
        {"fields": ["writes_block"]},
    )

    class Media:
        css = {"all": ["managed_commands/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: CommandExecution | None = None
    ) -> bool:
        # History is evidence: nobody edits it, superusers included. With the
        # view permission the change page renders read-only.
        return False

    def get_fieldsets(
        self, request: HttpRequest, obj: CommandExecution | None = None
    ) -> _FieldsetSpec:
        """The progress of a run that looped over batches, resumed another or was asked
        to stop; nothing about progress for any other run."""
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and _has_progress(obj):
            fieldsets.insert(1, self.progress_fieldset)
        if obj is not None and obj.dry_run:
            fieldsets.insert(1, self.dry_run_fieldset)
        return fieldsets

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: CommandExecution | None = None,
    ) -> HttpResponse:
        """The page of a queued or running run updates itself (``console_context``; without
        JavaScript it reloads every few seconds); a finished one does not. Its title says
        when it ended, and after how long."""
        if obj is not None:
            context.update(self.console_context(request, obj))
            context["subtitle"] = None  # the title names the run already
        context["mc_refresh_seconds"] = REFRESH_SECONDS if context.get("mc_live") else None
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(permissions=["stop"], description=_("Ask the selected running runs to stop"))
    def request_stop(self, request: HttpRequest, queryset: QuerySet[CommandExecution]) -> None:
        """Ask the selected running runs to stop after their batch (as ``stop_managed_command``)."""
        running = queryset.filter(status=CommandExecution.Status.RUNNING)
        asked = list(running.values_list("pk", "process_token"))
        ask_to_stop(ExecutionRecorder(queryset.db), asked)
        if not asked:
            self.message_user(request, _("None of the selected runs is running."), messages.WARNING)
            return
        self.message_user(
            request,
            ngettext(
                "Asked %(count)d running run to stop: a loop over iterate() stops after its "
                "current batch, with its cursor saved; a command without one runs to its end.",
                "Asked %(count)d running runs to stop: a loop over iterate() stops after its "
                "current batch, with its cursor saved; a command without one runs to its end.",
                len(asked),
            )
            % {"count": len(asked)},
            messages.SUCCESS,
        )

    @admin.action(
        permissions=["run"], description=_("Run again on a worker, with the same parameters")
    )
    def run_again(self, request: HttpRequest, queryset: QuerySet[CommandExecution]) -> None:
        """Enqueue each selected run's command again, with the parameters that run had.

        A run_once command that is done is left alone; a run whose parameters
        cannot be repeated (a redacted secret) is refused with its reason.
        """
        from managed_commands.tasks import enqueue_again  # defining the task reads TASKS

        enqueued: list[CommandExecution] = []
        done: list[str] = []
        for execution in queryset.order_by("executed_at", "pk"):
            try:
                row = enqueue_again(execution, triggered_by=request.user, trigger=ADMIN_TRIGGER)
            except ImproperlyConfigured as exc:  # no tasks API: the same for every run
                self.message_user(request, str(exc), messages.ERROR)
                return
            except CommandError as exc:  # LockHeld, bad parameters, another scope
                self.message_user(
                    request,
                    _("Run #%(id)s of %(command)s was not enqueued: %(error)s")
                    % {"id": execution.pk, "command": execution.command_name, "error": exc},
                    messages.ERROR,
                )
                continue
            if row is None:
                done.append(execution.command_name)
            else:
                enqueued.append(row)
        self._report_enqueued(request, enqueued)
        if done:
            self.message_user(
                request,
                _("Not enqueued, as these run_once commands are done: %(commands)s.")
                % {"commands": ", ".join(sorted(set(done)))},
                messages.WARNING,
            )

    def _report_enqueued(self, request: HttpRequest, rows: list[CommandExecution]) -> None:
        if not rows:
            return
        self.message_user(
            request,
            ngettext(
                "Enqueued %(count)d run for a task worker: %(runs)s.",
                "Enqueued %(count)d runs for a task worker: %(runs)s.",
                len(rows),
            )
            % {"count": len(rows), "runs": _listed(rows)},
            messages.SUCCESS,
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The history; its command filter offers a command added since the server started."""
        forget_changed_commands()
        return super().changelist_view(request, extra_context)

    def command_view(self, request: HttpRequest, name: str) -> HttpResponse:
        """The page of a command, one added since the server started included."""
        forget_changed_commands()
        return super().command_view(request, name)

    def run_pending_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """POST: enqueue the pending commands whose requirements are met (``enqueue_pending``)."""
        if not (self.has_view_permission(request) and self.has_run_permission(request)):
            raise PermissionDenied
        from managed_commands.tasks import enqueue_pending  # defining the task reads TASKS

        try:
            rows, waiting = enqueue_pending(triggered_by=request.user, trigger=ADMIN_TRIGGER)
        except (ImproperlyConfigured, CommandError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self._report_pending(request, rows, waiting)
        return HttpResponseRedirect(self._url("overview"))

    def _report_pending(
        self, request: HttpRequest, rows: list[CommandExecution], waiting: list[str]
    ) -> None:
        if not rows and not waiting:
            self.message_user(request, _("No pending command to enqueue."), messages.INFO)
        self._report_enqueued(request, rows)
        if waiting:
            self.message_user(
                request,
                _("Will be enqueued as what they require succeeds on a worker: %(commands)s.")
                % {"commands": ", ".join(waiting)},
                messages.INFO,
            )

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, execution: CommandExecution) -> SafeString:
        return status_badge(execution)

    @admin.display(description=_("duration"), ordering="duration")
    def duration_label(self, execution: CommandExecution) -> str:
        return self._duration(execution.duration)

    @admin.display(description=_("progress"))
    def progress_label(self, execution: CommandExecution) -> str:
        return self._or_empty(progress_text(execution))

    @admin.display(description=_("items per second"))
    def rate_label(self, execution: CommandExecution) -> str:
        rate = execution.tick_rate
        return self._or_empty("" if rate is None else f"{rate:,.1f}")

    @admin.display(description=_("time left"))
    def eta_label(self, execution: CommandExecution) -> str:
        running = execution.status == CommandExecution.Status.RUNNING
        if not running or execution.tick_count is None or run_gone(execution):
            return self._duration(None)
        return self._duration(
            eta_seconds(execution.tick_count, execution.tick_total, execution.tick_rate)
        )

    @admin.display(description=_("throttled"))
    def throttled_label(self, execution: CommandExecution) -> str:
        return self._duration(execution.throttled_seconds)

    @admin.display(description=_("resumed from"))
    def resumed_from_link(self, execution: CommandExecution) -> SafeString | str:
        if execution.resumed_from_id is None:
            return self.get_empty_value_display()
        url = self._url("change", execution.resumed_from_id)
        return format_html('<a href="{}">#{}</a>', url, execution.resumed_from_id)

    @admin.display(description=_("started by"))
    def started_by_label(self, execution: CommandExecution) -> str:
        return self._or_empty(started_by_text(execution))

    @admin.display(description=_("trigger"))
    def trigger_label(self, execution: CommandExecution) -> str:
        return self._or_empty(_origin(execution, "trigger"))

    @admin.display(description=_("Django user"))
    def django_user_label(self, execution: CommandExecution) -> str:
        return self._or_empty(_origin(execution, "django_user"))

    @admin.display(description=_("OS user"))
    def os_user_label(self, execution: CommandExecution) -> str:
        return self._or_empty(_origin(execution, "os_user"))

    @admin.display(description=_("release"))
    def release_label(self, execution: CommandExecution) -> str:
        return self._or_empty(_origin(execution, "release"))

    @admin.display(description=_("metadata"))
    def metadata_block(self, execution: CommandExecution) -> SafeString:
        return self._block("" if execution.metadata is None else pretty_json(execution.metadata))

    @admin.display(description=_("would have written"))
    def writes_block(self, execution: CommandExecution) -> SafeString:
        return self._block(pretty_json(execution.writes) if execution.writes else "")

    def _block(self, text: str) -> SafeString:
        if not text:
            return self.get_empty_value_display()
        return format_html('<pre class="mc-pre">{}</pre>', text)

    def _duration(self, seconds: float | None) -> str:
        return self._or_empty("" if seconds is None else human_duration(seconds))

    def _or_empty(self, text: str) -> str:
        # The change page shows a None from a method as "None"; the list shows
        # its empty value: give the empty value to both.
        return text or self.get_empty_value_display()

    @admin.display(description=_("parameters"))
    def parameters_block(self, execution: CommandExecution) -> SafeString:
        return self._block(pretty_json(execution.parameters))

    @admin.display(description=_("output"))
    def output_block(self, execution: CommandExecution) -> SafeString:
        return self._block(execution.output)

    @admin.display(description=_("error output"))
    def stderr_block(self, execution: CommandExecution) -> SafeString:
        return self._block(execution.stderr)

    @admin.display(description=_("error message"))
    def error_message_block(self, execution: CommandExecution) -> SafeString:
        return self._block(execution.error_message)

    @admin.display(description=_("traceback"))
    def traceback_block(self, execution: CommandExecution) -> SafeString:
        return self._block(execution.traceback)

    def get_urls(self) -> list[URLPattern]:
        overview = path(
            "overview/",
            self.admin_site.admin_view(self.overview_view),
            name=self._url_name("overview"),
        )
        run_pending = path(
            "overview/run-pending/",
            self.admin_site.admin_view(require_POST(self.run_pending_view)),
            name=self._url_name("run_pending"),
        )
        return [overview, run_pending, *self.console_urls(), *super().get_urls()]

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        """Every discovered managed command, its state and its last run.

        Commands whose definition has problems, and command modules that fail
        to import, are listed apart.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        forget_changed_commands()
        statuses = command_statuses()
        # Whoever looks detects a command turning late: logged once per late spell.
        alert_late(statuses)
        alarmed = sum(bool(status.alarms) for status in statuses)
        only_alarms = request.GET.get("cadence") == "alarm"
        if only_alarms:
            statuses = [status for status in statuses if status.alarms]
        found = discover()
        # A page at a time, as the history: a thousand commands render as fifty.
        page = Paginator(statuses, self.list_per_page).get_page(request.GET.get("p"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Managed commands"),
            "subtitle": None,
            "opts": self.opts,
            "rows": [
                (
                    status,
                    human_duration(status.last_run.duration if status.last_run else None),
                    progress_text(status.last_run) if status.running or status.gone else "",
                    describe_gone(status.last_run, status.gone)
                    if status.gone and status.last_run
                    else "",
                    cadence_text(status) if status.command.recurring else "",
                )
                for status in page
            ],
            "page": page,
            "command_count": len(statuses),
            "alarm_count": alarmed,
            "only_alarms": only_alarms,
            "pending_count": sum(status.state == CommandState.PENDING for status in statuses),
            "invalid": sorted(found.invalid.items()),
            "broken": sorted(found.broken.items()),
            "changelist_url": self._url("changelist"),
            "run_pending_url": (
                self._url("run_pending") if self.has_run_permission(request) else None
            ),
            "media": self.media,
        }
        return TemplateResponse(
            request, "admin/managed_commands/commandexecution/overview.html", context
        )


def _origin(execution: CommandExecution, key: str) -> str:
    """One value of the run's ``origin``; "" when absent."""
    value = (execution.origin or {}).get(key)
    return str(value) if value else ""


def _listed(rows: list[CommandExecution]) -> str:
    """``fail (run #12), talk (run #13)``."""
    return ", ".join(f"{row.command_name} (run #{row.pk})" for row in rows)


def _has_progress(execution: CommandExecution) -> bool:
    """Whether the run looped over batches, resumed another, or was asked to stop."""
    return any(
        value is not None
        for value in (
            execution.tick_count,
            execution.cursor,
            execution.resumed_from_id,
            execution.stop_requested_at,
        )
    )
