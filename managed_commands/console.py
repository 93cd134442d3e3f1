"""The admin as an operator's console: a page per managed command, a form built from
its parser, runs enqueued for a task worker, and the JSON a running run's page polls.

The command's own parser judges every value: the form only collects text and
turns it into a command line, which the parser reads as ``manage.py`` would,
so the form and the CLI never disagree. A command may give its own form
(``admin_form``, a ``forms.Form`` whose ``cleaned_data`` keys are its options'
``dest``) and name the permission that runs it (``run_permission``, say
``"catalog.fix_prices"``). Options stored redacted are password inputs,
never rendered back.

Nothing runs inside a web request: the run is enqueued (``enqueue_command``)
and its page watches the row a worker updates.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
from collections.abc import Mapping
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django import forms
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import router
from django.db.models.functions import Right
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from managed_commands import conf
from managed_commands.base import ManagedBaseCommand
from managed_commands.definition import Definition
from managed_commands.formatting import figures, human_duration, local_time
from managed_commands.loader import discover
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import ask_to_stop, is_sensitive
from managed_commands.status import CommandState, CommandStatus, command_statuses, run_gone

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[CommandExecution]
else:  # ModelAdmin is generic only in django-stubs
    ModelAdmin = admin.ModelAdmin

__all__ = ["ADMIN_TRIGGER", "ConsoleAdmin", "arguments_form", "command_line"]

#: The ``origin["trigger"]`` of the runs started from the admin.
ADMIN_TRIGGER = "admin"

#: How many of a command's newest runs its page lists.
RECENT_RUNS = 10
#: How many of the last lines of a run's output the watch view gives.
TAIL_LINES = 20
#: The characters those lines are read from: the database cuts them, not Python.
TAIL_CHARACTERS = 8000
Status = CommandExecution.Status


# -- the form ---------------------------------------------------------------------------


class WordsField(forms.CharField):
    """Several values in one text: separated by spaces or new lines, quoted as in a shell."""

    widget = forms.Textarea(attrs={"rows": 2})

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value)
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise ValidationError(
                _("Cannot split these values: %(error)s.") % {"error": exc}
            ) from None


class LinesField(forms.CharField):
    """One value per line (an option given once per value, ``action="append"``)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


@cache
def django_options() -> frozenset[str]:
    """The options every Django command has (a bare ``BaseCommand``'s): not the operator's."""
    parser = BaseCommand().create_parser("manage.py", "command")
    return frozenset(action.dest for action in parser._actions)


def offered_actions(parser: argparse.ArgumentParser, command: Definition) -> list[argparse.Action]:
    """The arguments the operator fills in: not Django's own options, not ``--rerun``
    nor ``--dry-run`` (the page's buttons), not those hidden from ``--help``."""
    controls = {"rerun", "dry_run"} if command.supports_dry_run else {"rerun"}
    return [
        action
        for action in parser._actions
        if action.dest not in django_options() | controls and action.help != argparse.SUPPRESS
    ]


def _many(action: argparse.Action) -> bool:
    """Whether ``action`` takes several values at once (``nargs``, ``extend``)."""
    takes_values = isinstance(action, argparse._StoreAction | argparse._AppendAction)
    return (takes_values and action.nargs not in (None, "?")) or isinstance(
        action, argparse._ExtendAction
    )


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The ``--help`` text of ``action`` (``%(default)s`` filled in), and how to type
    several values."""
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    if isinstance(action, argparse._AppendAction):
        text += " " + _("One value per line.")
    elif _many(action):
        text += " " + _("Separate values with spaces or new lines; quote a value holding spaces.")
    return text.strip()


_FLAGS = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._AppendConstAction,
)


def field_for(parser: argparse.ArgumentParser, action: argparse.Action) -> forms.Field:
    """A form field for one argument; its text is converted by the parser, not the field."""
    label = max(action.option_strings, key=len) if action.option_strings else action.dest
    # argparse marks a ``nargs="*"`` positional required, yet takes no value for it.
    required = action.required if action.option_strings else action.nargs not in ("?", "*")
    common: dict[str, Any] = {"label": label, "help_text": _help(parser, action)}
    if isinstance(action, _FLAGS):
        # Checked: the flag is given; for a store_false flag, its value True (not given).
        initial = (
            action.default is True if isinstance(action, argparse._StoreFalseAction) else False
        )
        return forms.BooleanField(required=False, initial=initial, **common)
    if isinstance(action, argparse.BooleanOptionalAction):
        return forms.NullBooleanField(initial=action.default, **common)
    if isinstance(action, argparse._CountAction):
        return forms.IntegerField(required=False, min_value=0, initial=action.default, **common)
    if isinstance(action, argparse._AppendAction):
        return LinesField(required=required, initial=_text(action.default, "\n"), **common)
    if _many(action):
        return WordsField(required=required, initial=_text(action.default, " "), **common)
    initial = _text(action.default, " ")
    if action.choices is not None:
        choices = [(str(choice), str(choice)) for choice in action.choices]
        blank = [] if required or action.default is not None else [("", "—")]
        return forms.ChoiceField(
            choices=blank + choices, required=required, initial=initial, **common
        )
    return forms.CharField(required=required, initial=initial, widget=_widget(action), **common)


def _widget(action: argparse.Action) -> forms.Widget:
    """A text input that hints at the type (the parser still reads the text)."""
    kind = action.type
    if kind in (datetime.date.fromisoformat, datetime.date):
        return forms.DateInput(attrs={"type": "date"})
    if kind is int:
        return forms.TextInput(attrs={"inputmode": "numeric"})
    if kind is float or getattr(kind, "__name__", "") == "Decimal":
        return forms.TextInput(attrs={"inputmode": "decimal"})
    return forms.TextInput()


def _text(value: Any, separator: str) -> Any:
    """A default or recorded value as the text its field shows."""
    if value is None or value == argparse.SUPPRESS:
        return None
    if isinstance(value, list | tuple):
        quoted = [str(item) if separator == "\n" else shlex.quote(str(item)) for item in value]
        return separator.join(quoted)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value if isinstance(value, bool) else str(value)


def command_of(command: Definition) -> ManagedBaseCommand:
    """An instance of the command's class, as ``manage.py`` would make."""
    instance: ManagedBaseCommand = import_module(command.module).Command()
    return instance


def parser_of(command: Definition) -> argparse.ArgumentParser:
    return command_of(command).create_parser("manage.py", command.name)


def arguments_form(
    command: Definition,
    data: Mapping[str, Any] | None = None,
    initial: dict[str, Any] | None = None,
) -> forms.Form:
    """The form of ``command``'s arguments: its ``admin_form``, or one built from its parser.

    Fields are named by the arguments' ``dest``. A field whose name looks secret (or
    is among ``sensitive_options``) is a password input that never shows its value.
    """
    parser = parser_of(command)
    custom = getattr(command_of(command), "admin_form", None)
    form: forms.Form
    if custom is not None:
        form = custom(data=data, initial=initial)
    else:
        form = forms.Form(data=data, initial=initial)
        form.fields = {
            action.dest: field_for(parser, action) for action in offered_actions(parser, command)
        }
    for name, field in form.fields.items():
        if is_sensitive(name, command.sensitive_options):
            field.widget = forms.PasswordInput(render_value=False)
            field.initial = None
    return form


def command_line(command: Definition, form: forms.Form) -> list[str] | None:
    """The command line of a valid ``form``, judged by the command's parser: None, with
    the parser's message added to the form, when it refuses it (as ``manage.py`` would)."""
    if not form.is_valid():
        return None
    parser = parser_of(command)
    actions = {action.dest: action for action in parser._actions}
    unknown = sorted(set(form.cleaned_data) - set(actions))
    if unknown:
        raise ImproperlyConfigured(
            f"The admin_form of '{command.name}' has fields its parser does not know: "
            f"{', '.join(unknown)}. Name each field after an option's dest."
        )
    options: list[str] = []
    positionals: list[str] = []
    for dest, value in form.cleaned_data.items():
        action = actions[dest]
        (options if action.option_strings else positionals).extend(_tokens(action, value))
    argv = options + positionals
    try:
        parser.parse_args(argv)
    except CommandError as exc:
        _refused(form, parser, _masked(str(exc), form, command))
        return None
    except SystemExit:  # a parser that exits on its own (a custom action)
        form.add_error(None, _("The command's parser refused these values."))
        return None
    return argv


def _tokens(action: argparse.Action, value: Any) -> list[str]:
    """The words of the command line that give ``action`` the form's ``value``."""
    if value is None or value == "" or value == []:
        return []
    flag = next((s for s in action.option_strings if s.startswith("--")), None)
    flag = flag or (action.option_strings[0] if action.option_strings else "")
    if isinstance(action, argparse.BooleanOptionalAction):
        return [action.option_strings[0] if value else action.option_strings[-1]]
    if isinstance(action, argparse._StoreFalseAction):
        return [] if value else [flag]
    if isinstance(action, _FLAGS):
        return [flag] if value else []
    if isinstance(action, argparse._CountAction):
        return [flag] * int(value)
    items = [_word(item) for item in value] if isinstance(value, list) else [_word(value)]
    if isinstance(action, argparse._AppendAction):
        return [
            word
            for item in items
            for word in (flag, *(shlex.split(item) if _many(action) else [item]))
        ]
    return [flag, *items] if flag else items


def _word(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def _masked(message: str, form: forms.Form, command: Definition) -> str:
    """``message`` with the value of every secret field replaced (argparse quotes values)."""
    for name, value in form.cleaned_data.items():
        if value and is_sensitive(name, command.sensitive_options):
            message = message.replace(str(value), _("(hidden)"))
    return message


def _refused(form: forms.Form, parser: argparse.ArgumentParser, message: str) -> None:
    """Put the parser's ``message`` on the field it names, or on the whole form."""
    message = message.removeprefix("Error: ")
    for action in parser._actions:
        named = argparse._get_action_name(action)
        if action.dest in form.fields and named and message.startswith(f"argument {named}:"):
            form.add_error(action.dest, message)
            return
    form.add_error(None, message)


def recorded_values(command: Definition, parameters: Any) -> tuple[dict[str, Any], list[str]]:
    """The initial values of the form for a run that recorded ``parameters``, and the
    options whose value was redacted (to be typed again)."""
    options = dict((parameters or {}).get("options") or {})
    # Stored redacted: the rule of the capture (a sensitive name with a value).
    secrets = sorted(
        name
        for name, value in options.items()
        if value is not None and is_sensitive(name, command.sensitive_options)
    )
    actions = {action.dest: action for action in parser_of(command)._actions}
    initial = {}
    for name, value in options.items():
        action = actions.get(name)
        if action is None or name in secrets:
            continue
        lines = isinstance(action, argparse._AppendAction)
        initial[name] = _text(value, "\n" if lines else " ")
    return initial, secrets


# -- who may run what ---------------------------------------------------------------------


def run_codename(name: str) -> str:
    """``run_<name>``: the codename of the permission to run command ``name`` from the admin."""
    return f"run_{name}"


def may_run(user: Any, command: Definition) -> bool:
    """May ``user`` run ``command`` from the admin?

    With ``run_managed_commands`` (any command), ``run_<name>`` (that one), or the
    permission the command names itself (``run_permission``).
    """
    opts = CommandExecution._meta
    own = getattr(command_of(command), "run_permission", None)
    wanted = [
        f"{opts.app_label}.run_managed_commands",
        f"{opts.app_label}.{run_codename(command.name)}",
    ]
    return any(user.has_perm(permission) for permission in [*wanted, *([own] if own else [])])


def create_run_permissions(
    *, using: str = "default", apps: Apps = global_apps, **kwargs: Any
) -> None:
    """``post_migrate`` receiver: a ``run_<name>`` permission for every managed command, on
    the ``CommandExecution`` content type, so that groups can be given one command."""
    # As auth's create_permissions: the models as migrated so far (``migrate`` of one app
    # may come before auth's and contenttypes' tables exist), where the routers put them.
    try:
        ContentType = apps.get_model("contenttypes", "ContentType")
        Permission = apps.get_model("auth", "Permission")
    except LookupError:
        return
    if not all(router.allow_migrate_model(using, model) for model in (Permission, ContentType)):
        return
    # As auth's create_permissions: a flush (TransactionTestCase) leaves stale ids cached.
    ContentType.objects.clear_cache()
    content_type = ContentType.objects.db_manager(using).get_for_model(CommandExecution)
    field = Permission._meta.get_field("codename")
    wanted = {
        run_codename(name): f"Can run {name}"
        for name in discover().commands
        if len(run_codename(name)) <= (field.max_length or 100)
    }
    known = set(
        Permission.objects.using(using)
        .filter(content_type=content_type, codename__in=wanted)
        .values_list("codename", flat=True)
    )
    Permission.objects.using(using).bulk_create(
        Permission(codename=codename, name=name, content_type=content_type)
        for codename, name in sorted(wanted.items())
        if codename not in known
    )


# -- the worker ---------------------------------------------------------------------------


def worker_problem() -> str | None:
    """Why runs cannot be enqueued for a worker here, or None when they can.

    Without the tasks API, without a usable ``TASKS`` backend, or with the
    ``ImmediateBackend`` (it runs the task inside the web request).
    """
    from managed_commands import tasks  # defining the task reads TASKS

    api = conf.tasks_api()
    if api is None:
        return tasks.INSTALL_HINT
    try:
        backend = tasks.run_enqueued_command.get_backend()
    except ImproperlyConfigured as exc:
        return f"{exc} {tasks.INSTALL_HINT}"
    if type(backend).__name__ == "ImmediateBackend":
        return _(
            "The TASKS backend runs tasks inside the web request (ImmediateBackend): "
            "configure one with a worker, for example django-tasks-db and its db_worker."
        )
    return None


# -- what the pages show --------------------------------------------------------------------


def cannot_start(status: CommandStatus, statuses: Mapping[str, CommandStatus]) -> str:
    """Why ``status``'s command cannot start now ("" when it can): done, running,
    queued, or what it requires not done yet."""
    run = status.last_run
    if busy(status) and run is not None:
        return _("run #%(id)s is %(state)s since %(when)s.") % {
            "id": run.pk,
            "state": status.shown_state.label,
            "when": local_time(run.executed_at),
        }
    if status.state == CommandState.DONE and status.done_by is not None:
        return _("it is done: run #%(id)s succeeded at %(when)s.") % {
            "id": status.done_by.pk,
            "when": local_time(status.done_by.executed_at),
        }
    missing = [
        name
        for name in status.command.command_requires
        if name not in statuses or statuses[name].last_success is None
    ]
    missing += sorted(status.unapplied_migrations)
    if missing:
        return _("it requires %(names)s, not done yet.") % {"names": ", ".join(missing)}
    return ""


def busy(status: CommandStatus) -> bool:
    """Whether the command's newest run holds its claim: queued, running, or ended with
    its outcome unknown (a start would be refused)."""
    return status.running or status.queued or status.outcome_unknown


def is_live(run: CommandExecution, gone: str | None) -> bool:
    """Whether ``run`` may still change: queued or running, its end not reached, its
    process not ``gone`` (``run_gone()``)."""
    live = run.status in (Status.QUEUED, Status.RUNNING) and not run.outcome_unknown
    return live and not gone


def watch_data(run: CommandExecution, tail: str) -> dict[str, Any]:
    """What a run's page shows while it runs, as JSON: never a secret (the row holds none)."""
    gone = run_gone(run)
    shown = figures(run.tick_count, run.tick_total, None if gone else run.tick_rate) or {}
    count, total = run.tick_count, run.tick_total
    eta = shown.get("eta_seconds") if run.status == Status.RUNNING else None
    moments = [m for m in (run.finished_at, run.heartbeat_at, run.executed_at) if m]
    return {
        "status": run.status,
        "shown": _("gone") if gone else run.get_status_display(),
        "ended": not is_live(run, gone),
        "rows_done": count,
        "rows_total": total,
        "percent": shown.get("percent"),
        "rate": shown.get("per_second"),
        "eta": eta,
        "count_text": "" if count is None else _count_text(count, total),
        "rate_text": ""
        if not shown.get("per_second")
        else _("%(rate)s per second") % {"rate": f"{shown['per_second']:,.1f}"},
        "eta_text": "" if eta is None else human_duration(eta),
        "output_tail": "\n".join(tail.splitlines()[-TAIL_LINES:]),
        "updated_at": max(moments).isoformat() if moments else None,
    }


def _count_text(count: int, total: int | None) -> str:
    if total is None:
        return _("%(count)s done") % {"count": f"{count:,}"}
    return _("%(count)s of %(total)s") % {"count": f"{count:,}", "total": f"{total:,}"}


def run_title(run: CommandExecution) -> str:
    """``fix_prices: failed at 14:05, 2 min 03 s``, or ``running since 14:05``."""
    status = run.get_status_display()
    if run.finished_at is None:
        return _("%(name)s: %(status)s since %(when)s") % {
            "name": run.command_name,
            "status": status,
            "when": local_time(run.executed_at),
        }
    return _("%(name)s: %(status)s at %(when)s, %(took)s") % {
        "name": run.command_name,
        "status": status,
        "when": local_time(run.finished_at),
        "took": human_duration(run.duration),
    }


# -- the views ------------------------------------------------------------------------------


class ConsoleAdmin(ModelAdmin):
    """The console's views on ``CommandExecution``'s admin: the command page, the watch
    view, stop and resume."""

    def has_stop_permission(self, request: HttpRequest) -> bool:
        """May ``request.user`` ask running runs to stop (``stop_commandexecution``)?"""
        codename = get_permission_codename("stop", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def has_run_permission(self, request: HttpRequest) -> bool:
        """May ``request.user`` run any managed command on a worker (``run_managed_commands``)?"""
        return request.user.has_perm(f"{self.opts.app_label}.run_managed_commands")

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def _url(self, view: str, *args: Any) -> str:
        return reverse(f"{self.admin_site.name}:{self._url_name(view)}", args=args)

    def console_urls(self) -> list[URLPattern]:
        def view(function: Any) -> Any:
            return self.admin_site.admin_view(function)

        return [
            path("command/<str:name>/", view(self.command_view), name=self._url_name("command")),
            path(
                "<path:object_id>/watch/",
                view(require_GET(self.watch_view)),
                name=self._url_name("watch"),
            ),
            path(
                "<path:object_id>/stop/",
                view(require_POST(self.stop_view)),
                name=self._url_name("stop"),
            ),
            path(
                "<path:object_id>/resume/",
                view(require_POST(self.resume_view)),
                name=self._url_name("resume"),
            ),
        ]

    def _command(self, request: HttpRequest, name: str) -> Definition:
        if not self.has_view_permission(request):
            raise PermissionDenied
        command = discover().commands.get(name)
        if command is None:
            raise Http404(f"No managed command named {name!r}.")
        return command

    def command_view(self, request: HttpRequest, name: str) -> HttpResponse:
        """GET: the command, its state, its recent runs and its form. POST (``action`` is
        ``preview``, ``run`` or ``rerun``): enqueue that run, then show its page."""
        command = self._command(request, name)
        allowed = may_run(request.user, command)
        if request.method == "POST":
            if not allowed:
                raise PermissionDenied
            action = request.POST.get("action")
            if action not in ("preview", "run", "rerun"):
                return HttpResponseBadRequest("action is preview, run or rerun.")
            form = arguments_form(command, data=request.POST)
            argv = command_line(command, form)
            if argv is not None:
                row = self._enqueue(request, command, argv, action)
                if row is not None:
                    return HttpResponseRedirect(self._url("change", row.pk))
        else:
            form = arguments_form(command, initial=self._prefill(request, command))
        return self._command_page(request, command, form, allowed)

    def _prefill(self, request: HttpRequest, command: Definition) -> dict[str, Any]:
        """The values of run ``?from=<id>`` of this command, but its secrets."""
        source = request.GET.get("from")
        if not source or not source.isdigit():
            return {}
        run = self.get_queryset(request).filter(pk=source, command_name=command.name).first()
        if run is None:
            return {}
        initial, secrets = recorded_values(command, run.parameters)
        if secrets:
            messages.warning(
                request,
                _(
                    "The values of run #%(id)s are filled in, but not %(secrets)s: it was "
                    "stored redacted, type it again."
                )
                % {"id": run.pk, "secrets": ", ".join(secrets)},
            )
        return initial

    def _enqueue(
        self, request: HttpRequest, command: Definition, argv: list[str], action: str
    ) -> CommandExecution | None:
        """Enqueue the run ``action`` asks for; None, with a message saying why, when not."""
        from managed_commands.tasks import enqueue_command  # defining the task reads TASKS

        # A POST the page did not offer (no worker): never run inside the request.
        problem = worker_problem()
        if problem:
            messages.error(request, problem)
            return None
        status = command_statuses(names=[command.name])[0]
        extra = ["--dry-run"] if action == "preview" else []
        if action == "rerun" or (status.state == CommandState.DONE and action == "preview"):
            extra.append("--rerun")
        try:
            row = enqueue_command(
                command.name, *argv, *extra, triggered_by=request.user, trigger=ADMIN_TRIGGER
            )
        except (ImproperlyConfigured, CommandError) as exc:
            messages.error(request, str(exc))
            return None
        if row is None:
            messages.warning(request, _("Not enqueued: this run_once command is done."))
        return row

    def _command_page(
        self, request: HttpRequest, command: Definition, form: forms.Form, allowed: bool
    ) -> TemplateResponse:
        statuses = {
            status.command.name: status
            for status in command_statuses(names=[command.name, *command.command_requires])
        }
        status = statuses[command.name]
        recorder = ExecutionRecorder(conf.history_database())
        recent = (
            recorder.executions.filter(command_name__in=command.history_names, scope=status.scope)
            .defer("output", "stderr", "traceback", "parameters", "cursor", "writes")
            .order_by("-executed_at", "-id")[:RECENT_RUNS]
        )
        no_worker = worker_problem() if allowed else None
        blocked = cannot_start(status, statuses)
        # A done run_once command runs again with --rerun, unless another run holds it.
        done = status.state == CommandState.DONE and not busy(status)
        context = {
            **self.admin_site.each_context(request),
            "title": command.name,
            "subtitle": None,
            "opts": self.opts,
            "command": command,
            "help": command_of(command).help,
            "status": status,
            "recent": [(run, human_duration(run.duration)) for run in recent],
            "form": form if allowed else None,
            "no_worker": no_worker,
            "cannot_start": blocked,
            "offer_buttons": allowed and not no_worker,
            "offer_run": allowed and not no_worker and not blocked,
            "offer_rerun": allowed and not no_worker and done,
            "offer_preview": allowed
            and not no_worker
            and command.supports_dry_run
            and (not blocked or done),
            "overview_url": self._url("overview"),
            "changelist_url": self._url("changelist"),
            "media": self.media + forms.Media(js=["admin/js/core.js"]),
        }
        return TemplateResponse(
            request, "admin/managed_commands/commandexecution/command.html", context
        )

    def _run(self, request: HttpRequest, object_id: str) -> CommandExecution:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request).defer("output"), pk=object_id)

    def watch_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """GET: the run's status, progress and last lines of output (``watch_data``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_queryset(request).defer(
            "output", "stderr", "traceback", "parameters", "cursor", "writes"
        )
        run = get_object_or_404(
            queryset.annotate(tail=Right("output", TAIL_CHARACTERS)), pk=object_id
        )
        # The annotation, which django-stubs does not see on the row.
        return JsonResponse(watch_data(run, getattr(run, "tail", None) or ""))

    def stop_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        """POST: ask the running run to stop after its batch, as ``stop_managed_command``."""
        run = self._run(request, object_id)
        if not self.has_stop_permission(request):
            raise PermissionDenied
        if run.status == Status.RUNNING:
            ask_to_stop(
                ExecutionRecorder(run._state.db or "default"), [(run.pk, run.process_token)]
            )
            messages.success(
                request,
                _(
                    "Asked run #%(id)s to stop: it stops after its current batch, with its "
                    "cursor saved."
                )
                % {"id": run.pk},
            )
        else:
            messages.warning(request, _("Run #%(id)s is not running.") % {"id": run.pk})
        return HttpResponseRedirect(self._url("change", run.pk))

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        """POST: enqueue an interrupted run of a resumable command again; it resumes from
        its cursor. A run whose secret was redacted leads to the command's page instead."""
        from managed_commands.tasks import enqueue_again  # defining the task reads TASKS

        run = self._run(request, object_id)
        command = self._command(request, run.command_name)
        if not may_run(request.user, command):
            raise PermissionDenied
        if not resumable(run, command):
            messages.warning(request, _("Run #%(id)s cannot be resumed.") % {"id": run.pk})
            return HttpResponseRedirect(self._url("change", run.pk))
        if recorded_values(command, run.parameters)[1]:
            query = urlencode({"from": run.pk})
            return HttpResponseRedirect(f"{self._url('command', command.name)}?{query}")
        try:
            row = enqueue_again(run, triggered_by=request.user, trigger=ADMIN_TRIGGER)
        except (ImproperlyConfigured, CommandError) as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._url("change", run.pk))
        if row is None:
            messages.warning(request, _("Not enqueued: this run_once command is done."))
            return HttpResponseRedirect(self._url("change", run.pk))
        return HttpResponseRedirect(self._url("change", row.pk))

    def console_context(self, request: HttpRequest, run: CommandExecution) -> dict[str, Any]:
        """What the change page of ``run`` adds: the live panel, stop, resume, run for real."""
        command = discover().commands.get(run.command_name)
        allowed = command is not None and may_run(request.user, command)
        live = is_live(run, run_gone(run))
        context: dict[str, Any] = {
            "title": run_title(run),
            "mc_live": live,
            "mc_watch": watch_data(run, run.output) if live else None,
            "mc_watch_url": self._url("watch", run.pk),
            # Drawn while queued too, hidden until the run starts (watch.js shows it):
            # the page of a run just enqueued offers Stop once a worker took it.
            "mc_stop_url": self._url("stop", run.pk)
            if live and self.has_stop_permission(request)
            else None,
            "mc_stop_hidden": run.status != Status.RUNNING,
            "mc_resume_url": self._url("resume", run.pk)
            if allowed and command is not None and resumable(run, command)
            else None,
            "mc_command_url": self._url("command", run.command_name) if command else None,
            "mc_writes": writes_rows(run.writes) if run.dry_run else None,
        }
        if run.dry_run and allowed and command is not None:
            initial, secrets = recorded_values(command, run.parameters)
            context["mc_run_for_real"] = {
                "form": None if secrets else arguments_form(command, initial=initial),
                "secrets": secrets,
                "from": run.pk,
            }
        return context


def resumable(run: CommandExecution, command: Definition) -> bool:
    """Whether ``run`` was interrupted (stopped, killed) with a saved cursor its command
    resumes from."""
    return run.status == Status.INTERRUPTED and command.resumes and run.cursor is not None


def writes_rows(writes: Any) -> list[tuple[str, str, Any]]:
    """``(table, kind, rows)`` of a dry run's ``writes["rows"]``, sorted by table."""
    tables = (writes or {}).get("rows") or {}
    return [
        (table, kind, count)
        for table, kinds in sorted(tables.items())
        for kind, count in sorted(dict(kinds).items())
    ]
