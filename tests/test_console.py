"""The admin as an operator's console: the command page and its form, runs enqueued
from it, the watch view, stop and resume, and who may do what."""

from __future__ import annotations

import datetime
import importlib
import logging
import re
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from managed_commands import console, origin
from managed_commands.models import CommandExecution
from managed_commands.runs.capture import REDACTED
from tests.test_admin import make_user

pytestmark = pytest.mark.django_db

TASKS_API = next(
    (name for name in ("django.tasks", "django_tasks") if importlib.util.find_spec(name)), None
)


@pytest.fixture(autouse=True)
def batchapp(settings):
    """The console's test commands (``console_fix``, ``console_kinds``, ``console_custom``)."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.batchapp"]


@pytest.fixture(autouse=True)
def worker_backend(settings):
    """A task backend that keeps its tasks for a worker (nothing runs in the request)."""
    if TASKS_API is None:
        pytest.fail("the console tests need django.tasks or the django-tasks backport")
    settings.TASKS = {"default": {"BACKEND": f"{TASKS_API}.backends.dummy.DummyBackend"}}


def command_url(name):
    return reverse("admin:managed_commands_commandexecution_command", kwargs={"name": name})


def change_url(pk):
    return reverse("admin:managed_commands_commandexecution_change", args=[pk])


def watch_url(pk):
    return reverse("admin:managed_commands_commandexecution_watch", kwargs={"object_id": pk})


def stop_url(pk):
    return reverse("admin:managed_commands_commandexecution_stop", kwargs={"object_id": pk})


def resume_url(pk):
    return reverse("admin:managed_commands_commandexecution_resume", kwargs={"object_id": pk})


def login(client, django_user_model, name, *perms):
    user = make_user(django_user_model, name, perms=["view_commandexecution", *perms])
    client.force_login(user)
    return user


@pytest.fixture
def operator(client, django_user_model):
    login(client, django_user_model, "operator", "run_managed_commands", "stop_commandexecution")
    return client


@pytest.fixture
def viewer(client, django_user_model):
    login(client, django_user_model, "viewer")
    return client


def page(client, name):
    response = client.get(command_url(name))
    assert response.status_code == 200
    return response


def fields_of(response):
    return response.context["form"].fields


def newest(name):
    return CommandExecution.objects.filter(command_name=name).latest("pk")


# -- the form ------------------------------------------------------------------------------


def test_the_form_has_a_field_per_argument_named_by_its_dest(operator):
    fields = fields_of(page(operator, "console_kinds"))
    assert list(fields) == [
        "target",
        "extra",
        "owner",
        "ratio",
        "price",
        "path",
        "shout",
        "pair",
        "tag",
        "mail",
        "level",
        "dsn",
        "fast",
        "slow",
    ]
    # Django's options and hidden ones are left out; --restart is not offered to a
    # command that does not resume.
    target, extra, owner, ratio = (fields[n] for n in ("target", "extra", "owner", "ratio"))
    assert (target.required, target.label, target.help_text) == (True, "target", "What to fix.")
    assert (extra.required, type(extra).__name__) == (False, "WordsField")
    assert "Separate values with spaces or new lines" in extra.help_text
    assert (owner.required, owner.label) == (True, "--owner")
    assert (ratio.required, ratio.initial) == (False, "0.5")
    assert type(fields["tag"]).__name__ == "LinesField"
    assert "One value per line." in fields["tag"].help_text
    assert (type(fields["mail"]).__name__, fields["mail"].initial) == ("BooleanField", True)
    assert (type(fields["fast"]).__name__, fields["fast"].initial) == ("BooleanField", False)
    level = fields["level"]
    assert (level.choices, level.initial) == ([("1", "1"), ("2", "2"), ("3", "3")], "2")


def test_the_fix_command_offers_preview_and_run_with_typed_inputs(operator):
    response = page(operator, "console_fix")
    fields = fields_of(response)
    # --dry-run is the Preview button; --restart a field of a resumable command.
    assert list(fields) == [
        "limit",
        "mode",
        "notify",
        "since",
        "api_token",
        "batch_size",
        "pause",
        "restart",
    ]
    assert fields["mode"].choices == [("count", "count"), ("reset", "reset")]
    assert fields["pause"].help_text == "Seconds after each batch."
    html = response.content.decode()
    assert '<form id="mc-command-form" method="post" novalidate>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<input type="text" name="limit" inputmode="numeric"' in html
    assert '<input type="date" name="since"' in html
    assert '<input type="password" name="api_token"' in html
    assert '<button type="submit" class="button" name="action" value="preview"' in html
    assert '<button type="submit" class="button default" name="action" value="run"' in html
    assert 'value="rerun"' not in html
    assert "mc-cannot-start" not in html and "mc-no-worker" not in html
    assert "None" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)


def post(client, name, action="run", **values):
    return client.post(command_url(name), {"action": action, **values})


def test_a_run_is_enqueued_for_a_worker_with_the_command_line_of_the_form(operator):
    response = post(
        operator,
        "console_kinds",
        target="shop",
        extra="a 'b c'",
        owner="ops",
        ratio="0.25",
        price="9.99",
        path="/tmp/x",
        shout="loud",
        pair="1 2",
        tag="red\n\nblue\n",
        level="3",
        fast="on",
    )
    row = newest("console_kinds")
    assert response.status_code == 302
    assert response["Location"] == change_url(row.pk)
    assert row.status == CommandExecution.Status.QUEUED
    assert (row.origin["trigger"], row.origin["django_user"]) == ("admin", "operator")
    # A Path is stored as the path typed, which the parser reads back the same.
    assert row.parameters["options"].pop("path") == "/tmp/x"
    assert row.parameters["options"] == {
        "target": "shop",
        "extra": ["a", "b c"],
        "owner": "ops",
        "ratio": 0.25,
        "price": "9.99",
        "shout": "LOUD",
        "pair": ["1", "2"],
        "tag": ["red", "blue"],
        # The unchecked store_false box gave --no-mail.
        "mail": False,
        "level": 3,
        "dsn": None,
        "fast": True,
        "slow": False,
        "hidden": None,
    }


def test_a_value_the_parser_refuses_is_refused_with_its_message(operator):
    before = CommandExecution.objects.count()
    response = post(operator, "console_fix", limit="ten", mode="count", since="2026-02-30")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors == {"limit": ["argument --limit: invalid int value: 'ten'"]}
    assert CommandExecution.objects.count() == before
    response = post(operator, "console_fix", mode="count", since="2026-02-30")
    assert response.context["form"].errors == {
        "since": ["argument --since: invalid fromisoformat value: '2026-02-30'"]
    }


def test_a_mutually_exclusive_group_is_judged_by_the_parser(operator):
    response = post(operator, "console_kinds", target="t", owner="o", fast="on", slow="on")
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "slow": ["argument --slow: not allowed with argument --fast"]
    }
    assert not CommandExecution.objects.filter(command_name="console_kinds").exists()


def test_required_arguments_are_required(operator):
    response = post(operator, "console_kinds", owner="")
    assert set(response.context["form"].errors) == {"target", "owner"}


def test_a_command_may_give_its_own_form(client, django_user_model):
    login(client, django_user_model, "clerk", "run_managed_commands")
    response = page(client, "console_custom")
    fields = fields_of(response)
    assert list(fields) == ["count", "day", "loud", "token"]
    assert fields["count"].help_text == "How many."
    assert '<input type="password" name="token"' in response.content.decode()
    response = post(client, "console_custom", count="0")
    assert response.context["form"].errors == {
        "count": ["Ensure this value is greater than or equal to 1."]
    }
    post(client, "console_custom", count="3", day="2026-01-31", loud="on", token=SECRET)
    row = newest("console_custom")
    assert row.parameters["options"] == {
        "count": 3,
        "day": "2026-01-31",
        "loud": True,
        "token": REDACTED,
    }


# -- secrets ----------------------------------------------------------------------------------


SECRET = "s3cr3t-v4lu3-xyz"


def test_a_secret_is_a_password_input_never_echoed_stored_or_logged(operator, caplog):
    caplog.set_level(logging.DEBUG)
    refused = post(operator, "console_fix", limit="x", mode="count", api_token=SECRET)
    assert refused.status_code == 200
    assert SECRET not in refused.content.decode()
    assert '<input type="password" name="api_token"' in refused.content.decode()
    # Its own value refused by the parser: the message does not repeat it.
    refused = post(operator, "console_kinds", target="t", owner="o", dsn=SECRET, level="9")
    assert SECRET not in refused.content.decode()

    response = post(operator, "console_fix", mode="count", api_token=SECRET)
    row = newest("console_fix")
    assert response.status_code == 302
    assert row.parameters["options"]["api_token"] == REDACTED
    assert SECRET not in str(row.parameters)
    shown = operator.get(change_url(row.pk)).content.decode()
    assert SECRET not in shown
    assert SECRET not in page(operator, "console_fix").content.decode()
    assert SECRET not in caplog.text


def test_a_dry_run_with_a_secret_leads_back_to_the_form_to_type_it_again(operator):
    post(operator, "console_fix", "preview", limit="5", mode="reset", api_token=SECRET)
    dry = newest("console_fix")
    assert (dry.dry_run, dry.status) == (True, CommandExecution.Status.QUEUED)
    shown = operator.get(change_url(dry.pk)).content.decode()
    assert f'<form method="get" action="{command_url("console_fix")}"' in shown
    assert 'id="mc-run-for-real"' in shown
    assert "api_token was stored redacted" in shown
    again = operator.get(command_url("console_fix"), {"from": dry.pk})
    form = again.context["form"]
    assert form["limit"].value() == "5"
    assert form["mode"].value() == "reset"
    assert form["api_token"].value() is None
    assert [str(m) for m in again.context["messages"]] == [
        f"The values of run #{dry.pk} are filled in, but not api_token: it was stored "
        "redacted, type it again."
    ]


# -- preview, run, rerun -------------------------------------------------------------------


def test_preview_enqueues_an_audited_dry_run_and_its_page_offers_to_run_for_real(operator):
    response = post(operator, "console_fix", "preview", limit="7", mode="reset", notify="on")
    dry = newest("console_fix")
    assert response["Location"] == change_url(dry.pk)
    assert (dry.dry_run, dry.status) == (True, CommandExecution.Status.QUEUED)
    # As a worker would end it: its claim released.
    CommandExecution.objects.filter(pk=dry.pk).update(
        status="dry_run",
        lock_key=None,
        finished_at=timezone.now(),
        duration=1.5,
        writes={"rows": {"batchmodels_item": {"UPDATE": 7}}, "statements": 2},
        output="batch 1: 7 items\n",
    )
    shown = operator.get(change_url(dry.pk))
    html = shown.content.decode()
    assert re.search(
        r'<div class="module" id="mc-writes">.*<code>batchmodels_item</code></td><td>UPDATE</td>'
        r'<td class="mc-number">7</td>',
        html,
        re.S,
    )
    assert f'<form method="post" action="{command_url("console_fix")}"' in html
    assert '<input type="hidden" name="limit" value="7"' in html
    assert shown.context["title"].startswith("console_fix: dry run at ")
    assert shown.context["title"].endswith(", 1.5 s")
    # The button posts those values back, as a real run.
    form = shown.context["mc_run_for_real"]["form"]
    values = {
        field.html_name: field.value() for field in form if field.value() not in (None, False)
    }
    response = post(operator, "console_fix", "run", **values)
    real = newest("console_fix")
    assert response["Location"] == change_url(real.pk)
    assert real.dry_run is False
    assert real.parameters["options"] == {**dry.parameters["options"], "dry_run": False}


def test_a_done_run_once_command_offers_rerun_instead_of_run(operator):
    from managed_commands.testing.utils import run_command

    run_command("once")
    html = page(operator, "once").content.decode()
    assert 'id="mc-cannot-start"' in html
    assert "It cannot start now: it is done: run #" in html
    assert 'value="run"' not in html
    assert 'name="action" value="rerun"' in html
    response = post(operator, "once", "rerun")
    again = newest("once")
    assert response["Location"] == change_url(again.pk)
    assert again.forced is True
    assert again.status == CommandExecution.Status.QUEUED
    # That rerun holds the command now: no second one is offered.
    html = page(operator, "once").content.decode()
    assert f"It cannot start now: run #{again.pk} is queued since" in html
    assert 'name="action"' not in html


def test_a_command_whose_requirement_is_not_met_says_why(operator):
    html = page(operator, "needs_once").content.decode()
    assert re.search(
        r'id="mc-cannot-start">It cannot start now: it requires once, noop_once, not done', html
    )
    assert 'value="run"' not in html


def test_a_queued_command_says_it_cannot_start(operator):
    post(operator, "console_fix", mode="count")
    row = newest("console_fix")
    html = page(operator, "console_fix").content.decode()
    assert f"It cannot start now: run #{row.pk} is queued since" in html
    assert 'value="run"' not in html


def test_without_a_worker_no_button_is_offered_and_the_page_says_what_to_configure(
    operator, settings, monkeypatch
):
    settings.TASKS = {"default": {"BACKEND": f"{TASKS_API}.backends.immediate.ImmediateBackend"}}
    html = page(operator, "console_fix").content.decode()
    assert 'id="mc-no-worker"' in html and "ImmediateBackend" in html
    assert 'name="action"' not in html
    forged = post(operator, "console_fix", mode="count")
    assert forged.status_code == 200
    [message] = forged.context["messages"]
    assert "ImmediateBackend" in str(message)
    assert not CommandExecution.objects.filter(command_name="console_fix").exists()
    settings.TASKS = {"default": {"BACKEND": "tests.no_such_module.Backend"}}
    html = page(operator, "console_fix").content.decode()
    assert "Could not find backend &#x27;tests.no_such_module.Backend&#x27;" in html
    assert 'name="action"' not in html
    from managed_commands import conf

    monkeypatch.setattr(conf, "tasks_api", lambda: None)
    html = page(operator, "console_fix").content.decode()
    assert "Running managed commands on task workers needs django.tasks" in html
    assert 'name="action"' not in html


# -- permissions ----------------------------------------------------------------------------


def test_a_viewer_sees_no_form_nor_buttons_and_a_forged_post_is_refused(viewer):
    html = page(viewer, "console_fix").content.decode()
    assert "mc-command-form" not in html and 'name="action"' not in html
    running = CommandExecution.objects.create(
        command_name="console_fix", status="running", tick_count=1, tick_total=10
    )
    interrupted = CommandExecution.objects.create(
        command_name="console_fix", status="interrupted", cursor={"main": {}}
    )
    shown = viewer.get(change_url(running.pk)).content.decode()
    assert "mc-stop" not in shown
    assert "mc-resume" not in viewer.get(change_url(interrupted.pk)).content.decode()
    before = CommandExecution.objects.count()
    assert post(viewer, "console_fix", mode="count").status_code == 403
    assert viewer.post(stop_url(running.pk)).status_code == 403
    assert viewer.post(resume_url(interrupted.pk)).status_code == 403
    assert CommandExecution.objects.count() == before
    assert CommandExecution.objects.get(pk=running.pk).stop_requested_at is None


def test_actions_are_post_only(operator):
    run = CommandExecution.objects.create(command_name="console_fix", status="running")
    assert operator.get(stop_url(run.pk)).status_code == 405
    assert operator.get(resume_url(run.pk)).status_code == 405
    assert operator.post(watch_url(run.pk)).status_code == 405
    assert post(operator, "console_fix", "explode").status_code == 400


def test_a_staff_user_without_view_permission_sees_nothing(client, django_user_model):
    client.force_login(make_user(django_user_model, "intern"))
    assert client.get(command_url("console_fix")).status_code == 403
    run = CommandExecution.objects.create(command_name="console_fix", status="running")
    assert client.get(watch_url(run.pk)).status_code == 403


def test_a_per_command_permission_runs_that_command_only(client, django_user_model):
    # tests.batchapp was not installed when the test database was migrated.
    console.create_run_permissions(using="default")
    login(client, django_user_model, "fixer", "run_console_fix")
    assert "mc-command-form" in page(client, "console_fix").content.decode()
    assert "mc-command-form" not in page(client, "console_kinds").content.decode()
    assert post(client, "console_fix", mode="count").status_code == 302
    assert post(client, "console_kinds", target="t", owner="o").status_code == 403


def test_a_command_may_name_the_permission_it_needs(client, django_user_model):
    user = login(client, django_user_model, "stocker")
    assert post(client, "console_custom", count="1").status_code == 403
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="batchmodels", codename="change_item")
    )
    assert post(client, "console_custom", count="1").status_code == 302


def test_post_migrate_creates_a_run_permission_per_managed_command():
    # tests.testapp's commands got theirs when the test database was migrated.
    talk = Permission.objects.get(content_type__app_label="managed_commands", codename="run_talk")
    assert talk.name == "Can run talk"
    Permission.objects.filter(codename__startswith="run_console").delete()
    console.create_run_permissions(using="default")
    console.create_run_permissions(using="default")  # nothing twice
    names = Permission.objects.filter(codename__startswith="run_console").values_list(
        "codename", "name"
    )
    assert sorted(names) == [
        ("run_console_custom", "Can run console_custom"),
        ("run_console_fix", "Can run console_fix"),
        ("run_console_kinds", "Can run console_kinds"),
    ]


# -- the run's page: watch, stop, resume -------------------------------------------------------


def running_fix(**fields):
    values = {
        "command_name": "console_fix",
        "status": "running",
        "executed_at": timezone.now() - datetime.timedelta(seconds=30),
        "heartbeat_at": timezone.now(),
        "tick_count": 1200,
        "tick_total": 10000,
        "tick_rate": 40.0,
        "pid": None,
        **fields,
    }
    return CommandExecution.objects.create(**values)


def test_the_watch_view_gives_the_progress_of_a_running_batch_run(viewer):
    run = running_fix(output="\n".join(f"line {n}" for n in range(1, 31)))
    data = viewer.get(watch_url(run.pk)).json()
    assert data == {
        "status": "running",
        "shown": "running",
        "ended": False,
        "rows_done": 1200,
        "rows_total": 10000,
        "percent": 12,
        "rate": 40.0,
        "eta": 220,
        "count_text": "1,200 of 10,000",
        "rate_text": "40.0 per second",
        "eta_text": "3 min 40 s",
        "output_tail": "\n".join(f"line {n}" for n in range(11, 31)),
        "updated_at": run.heartbeat_at.isoformat(),
    }
    CommandExecution.objects.filter(pk=run.pk).update(
        status="succeeded", success=True, finished_at=timezone.now()
    )
    ended = viewer.get(watch_url(run.pk)).json()
    assert (ended["ended"], ended["eta"], ended["shown"]) == (True, None, "succeeded")


def test_a_run_whose_process_is_gone_has_ended_for_its_page(viewer):
    """Else its page would reload itself every second, the run never ending."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run = running_fix(
        pid=child.pid, hostname=origin.hostname(), host_id=origin.host_identity(), process_token="1"
    )
    data = viewer.get(watch_url(run.pk)).json()
    assert (data["ended"], data["shown"], data["eta"]) == (True, "gone", None)
    assert "mc-live" not in viewer.get(change_url(run.pk)).content.decode()


def test_the_page_of_a_running_run_has_its_live_panel(operator):
    run = running_fix()
    response = operator.get(change_url(run.pk))
    html = response.content.decode()
    assert f'data-watch-url="{watch_url(run.pk)}"' in html
    assert '<progress id="mc-progress" max="10000" value="1200"></progress>' in html
    assert '<span id="mc-count">1,200 of 10,000</span>' in html
    assert '<span id="mc-eta">3 min 40 s</span>' in html
    assert "managed_commands/watch.js" in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert f'<form method="post" action="{stop_url(run.pk)}" id="mc-stop-form">' in html
    assert response.context["title"].startswith("console_fix: running since ")
    # Nothing is empty as "None": not its origin (none recorded), nor an ETA once it ended.
    assert ">None<" not in html
    CommandExecution.objects.filter(pk=run.pk).update(status="interrupted")
    assert "ETA" not in operator.get(change_url(run.pk)).content.decode()


def test_stop_asks_the_running_run_to_stop_after_its_batch(operator):
    from tests.test_admin import stop_asked

    run = running_fix()
    response = operator.post(stop_url(run.pk), follow=True)
    assert response.redirect_chain == [(change_url(run.pk), 302)]
    assert stop_asked(CommandExecution.objects.get(pk=run.pk))


def test_resume_enqueues_an_interrupted_resumable_run_again(operator):
    stopped = CommandExecution.objects.create(
        command_name="console_fix",
        status="interrupted",
        finished_at=timezone.now(),
        parameters={"args": [], "options": {"limit": 50, "mode": "count", "api_token": None}},
        cursor={"main": {"columns": ["pk"], "after": [10], "count": 10, "done": False}},
    )
    html = operator.get(change_url(stopped.pk)).content.decode()
    assert f'<form method="post" action="{resume_url(stopped.pk)}">' in html
    response = operator.post(resume_url(stopped.pk))
    again = newest("console_fix")
    assert response["Location"] == change_url(again.pk)
    assert again.status == CommandExecution.Status.QUEUED
    assert (again.origin["trigger"], again.origin["django_user"]) == ("admin", "operator")
    assert again.parameters["options"]["limit"] == 50


def test_resume_of_a_run_with_a_secret_asks_for_it_again(operator):
    stopped = CommandExecution.objects.create(
        command_name="console_fix",
        status="interrupted",
        parameters={"args": [], "options": {"limit": 50, "api_token": REDACTED}},
        cursor={"main": {"count": 10}},
    )
    response = operator.post(resume_url(stopped.pk))
    assert response["Location"] == f"{command_url('console_fix')}?from={stopped.pk}"


def test_preview_then_run_for_real_on_a_worker(
    operator, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The whole way in process: the ImmediateBackend stands for the worker."""
    from tests.batchmodels.models import Item

    settings.TASKS = {"default": {"BACKEND": f"{TASKS_API}.backends.immediate.ImmediateBackend"}}
    monkeypatch.setattr(console, "worker_problem", lambda: None)
    Item.objects.bulk_create(Item(number=n) for n in range(1, 251))
    values = {"limit": "120", "mode": "count", "since": "2026-01-31", "pause": "0"}
    with django_capture_on_commit_callbacks(execute=True):
        post(operator, "console_fix", "preview", api_token=SECRET, **values)
    dry = newest("console_fix")
    assert (dry.status, dry.dry_run) == (CommandExecution.Status.DRY_RUN, True)
    assert dry.writes["rows"] == {"batchmodels_item": {"UPDATE": 120}}
    assert sorted(set(Item.objects.values_list("processed", flat=True))) == [0]
    html = operator.get(change_url(dry.pk)).content.decode()
    assert '<td class="mc-number">120</td>' in html
    assert SECRET not in html + dry.output
    with django_capture_on_commit_callbacks(execute=True):
        post(operator, "console_fix", "run", notify="on", **values)
    real = newest("console_fix")
    assert (real.status, real.tick_count, real.tick_total) == ("succeeded", 120, 120)
    assert real.output.splitlines()[-1] == "console_fix: done"
    assert (real.origin["trigger"], real.origin["django_user"]) == ("admin", "operator")
    assert Item.objects.filter(processed=1).count() == 120


# -- queries at scale ---------------------------------------------------------------------------

_GENERATED = """from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Generated for the console's query counts."
    run_once = {run_once}

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int)

    def handle(self, *args, **options):
        pass
"""


def generated_app(root, app, count):
    """An app of ``count`` managed commands (``<app>_000``...), 3 in 4 run_once."""
    package = root / app / "management" / "commands"
    package.mkdir(parents=True)
    for init in (root / app, package.parent, package):
        (init / "__init__.py").touch()
    names = [f"{app}_{number:03d}" for number in range(count)]
    for number, name in enumerate(names):
        (package / f"{name}.py").write_text(_GENERATED.format(run_once=number % 4 != 0))
    return names


def history_of(names, count):
    """``count`` ended runs spread over ``names``, newest first, some failed."""
    now = timezone.now()
    CommandExecution.objects.bulk_create(
        CommandExecution(
            command_name=names[number % len(names)],
            status="failed" if number % 3 else "succeeded",
            success=not number % 3,
            executed_at=now - datetime.timedelta(minutes=number + 1),
            finished_at=now - datetime.timedelta(minutes=number),
            duration=60.0,
            tick_count=number,
            tick_total=count,
        )
        for number in range(count)
    )


def queries(client, url):
    client.get(url)  # caches warm: content types, the session
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_pages_read_as_many_times_however_long_the_history_and_however_many_commands(
    operator, settings, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    apps = {3: "mc_console_few", 30: "mc_console_many"}
    commands = {count: generated_app(tmp_path, app, count) for count, app in apps.items()}
    installed = settings.INSTALLED_APPS
    counted = {}
    for count, history in ((3, 10), (3, 200), (30, 10), (30, 200)):
        CommandExecution.objects.all().delete()
        settings.INSTALLED_APPS = [*installed, apps[count]]
        names = commands[count]
        history_of(names, history)
        running = CommandExecution.objects.create(
            command_name=names[0], status="running", tick_count=5, tick_total=history
        )
        counted[count, history] = (
            queries(operator, command_url(names[0])),
            queries(operator, watch_url(running.pk)),
            queries(operator, change_url(running.pk)),
            queries(operator, reverse("admin:managed_commands_commandexecution_overview")),
        )
    assert len(set(counted.values())) == 1, counted
