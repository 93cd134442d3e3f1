import datetime
import re
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.contrib.admin import site
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from managed_commands import origin
from managed_commands.models import CommandExecution
from managed_commands.runs import claim
from tests.admin_history import ESCAPED_PAYLOAD, PAYLOAD, make_history

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:managed_commands_commandexecution_changelist")
OVERVIEW = reverse("admin:managed_commands_commandexecution_overview")
ADD = reverse("admin:managed_commands_commandexecution_add")


def change_url(execution):
    return reverse("admin:managed_commands_commandexecution_change", args=[execution.pk])


def delete_url(execution):
    return reverse("admin:managed_commands_commandexecution_delete", args=[execution.pk])


@pytest.fixture
def history():
    return make_history()


def make_user(django_user_model, username, *, staff=True, perms=()):
    user = django_user_model.objects.create_user(username, password="pw", is_staff=staff)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="managed_commands", codename__in=list(perms)
        )
    )
    return user


@pytest.fixture
def viewer(client, django_user_model):
    client.force_login(make_user(django_user_model, "viewer", perms=["view_commandexecution"]))
    return client


@pytest.fixture
def superuser(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    return client


def listed_names(response):
    """Command names in the result table, in page order."""
    return re.findall(
        r'<th class="field-command_name"><a href="[^"]+">([^<]*)</a>', response.content.decode()
    )


def test_anonymous_is_sent_to_login(client, history):
    for url in (CHANGELIST, change_url(history.crashed), OVERVIEW):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_non_staff_is_sent_to_login(client, django_user_model, history):
    client.force_login(make_user(django_user_model, "clerk", staff=False))
    for url in (CHANGELIST, change_url(history.crashed), OVERVIEW):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")


def test_staff_without_view_permission_is_refused(client, django_user_model, history):
    client.force_login(make_user(django_user_model, "intern"))
    for url in (CHANGELIST, change_url(history.crashed), OVERVIEW):
        assert client.get(url).status_code == 403
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "managed-commands-overview-link" not in index.content.decode()


def test_list_shows_runs_newest_first_with_badges_and_durations(viewer, history):
    response = viewer.get(CHANGELIST)
    assert response.status_code == 200
    assert listed_names(response) == [ESCAPED_PAYLOAD, "talk", "fail", "noop_once"]
    html = response.content.decode()
    assert '<span class="mc-badge mc-status-failed">failed</span>' in html
    assert '<span class="mc-badge mc-status-succeeded">succeeded</span>' in html
    assert '<td class="field-duration_label">3 min 05 s</td>' in html
    assert '<td class="field-duration_label">850 ms</td>' in html
    assert f'<td class="field-hostname">{history.crashed.hostname}</td>' in html
    assert "Overview of managed commands" in html
    assert ADD not in html


def test_filters_by_status_command_run_once_and_date(viewer, history):
    page = viewer.get(CHANGELIST)
    by_status = viewer.get(CHANGELIST, {"status__exact": "failed"})
    assert listed_names(by_status) == ["talk", "fail"]
    by_command = viewer.get(CHANGELIST, {"command_name": "fail"})
    assert listed_names(by_command) == ["fail"]
    assert listed_names(viewer.get(CHANGELIST, {"run_once__exact": "1"})) == ["noop_once"]
    CommandExecution.objects.filter(pk=history.succeeded.pk).update(
        executed_at=timezone.now() - datetime.timedelta(days=40)
    )
    # Follow the date filter's own "Past 7 days" link.
    links = dict(
        (label, href.replace("&amp;", "&"))
        for href, label in re.findall(
            r'<a href="(\?executed_at[^"]*)">([^<]+)</a>', page.content.decode()
        )
    )
    recent = viewer.get(CHANGELIST + links["Past 7 days"])
    assert listed_names(recent) == [ESCAPED_PAYLOAD, "talk", "fail"]


def test_command_filter_offers_discovered_commands_without_scanning_history(viewer, history):
    with CaptureQueriesContext(connection) as queries:
        response = viewer.get(CHANGELIST)
    assert "?command_name=needs_once" in response.content.decode()  # never ran, still offered
    history_queries = [q["sql"] for q in queries if "managed_commands_commandexecution" in q["sql"]]
    # One count of the (unfiltered) page set, one page of rows, and the releases of
    # the newest runs for the release filter: no DISTINCT, no full count.
    assert len(history_queries) == 3, history_queries
    assert not any("DISTINCT" in sql.upper() for sql in history_queries)
    [releases] = [sql for sql in history_queries if "release" in sql]
    assert "LIMIT 500" in releases


def test_filtered_list_counts_only_the_filtered_rows(viewer, history):
    with CaptureQueriesContext(connection) as queries:
        viewer.get(CHANGELIST, {"status__exact": "failed"})
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    assert "WHERE" in counts[0].upper()


def test_search_looks_in_name_error_message_and_output(viewer, history):
    assert listed_names(viewer.get(CHANGELIST, {"q": "noop_"})) == ["noop_once"]
    assert listed_names(viewer.get(CHANGELIST, {"q": "the data is bad"})) == ["fail"]
    assert listed_names(viewer.get(CHANGELIST, {"q": "fail: about to"})) == ["fail"]
    assert listed_names(viewer.get(CHANGELIST, {"q": "onerror"})) == [ESCAPED_PAYLOAD, "talk"]


def test_failed_run_detail_is_read_only_with_traceback_in_monospace(viewer, history):
    response = viewer.get(change_url(history.crashed))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(
        r'<pre class="mc-pre">Traceback \(most recent call last\):\n.*'
        r"ValueError: the data is bad\n?</pre>",
        html,
        re.DOTALL,
    )
    assert '<pre class="mc-pre">ValueError: the data is bad</pre>' in html
    assert '<pre class="mc-pre">fail: about to fail\n</pre>' in html
    assert '<pre class="mc-pre">{\n  &quot;args&quot;: [],' in html
    assert '<div class="readonly">-</div>' in html  # no stderr
    assert "<textarea" not in html
    assert 'name="_save"' not in html


def test_superuser_cannot_add_or_edit(superuser, history):
    detail = superuser.get(change_url(history.crashed))
    assert detail.status_code == 200
    assert "<textarea" not in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert superuser.get(ADD).status_code == 403
    posted = superuser.post(change_url(history.crashed), {"command_name": "edited"})
    assert posted.status_code == 403
    assert CommandExecution.objects.get(pk=history.crashed.pk).command_name == "fail"
    assert ADD not in superuser.get(CHANGELIST).content.decode()


def test_deleting_follows_django_permissions(client, django_user_model, history):
    client.force_login(make_user(django_user_model, "viewer", perms=["view_commandexecution"]))
    assert client.post(delete_url(history.crashed), {"post": "yes"}).status_code == 403
    client.force_login(
        make_user(
            django_user_model,
            "cleaner",
            perms=["view_commandexecution", "delete_commandexecution"],
        )
    )
    response = client.post(delete_url(history.crashed), {"post": "yes"})
    assert response.status_code == 302
    assert not CommandExecution.objects.filter(pk=history.crashed.pk).exists()


def test_hostile_output_is_shown_as_text(viewer, history):
    pages = {
        "list": viewer.get(CHANGELIST).content.decode(),
        "filtered list": viewer.get(CHANGELIST, {"command_name": PAYLOAD}).content.decode(),
        "detail": viewer.get(change_url(history.hostile)).content.decode(),
        "detail of the name": viewer.get(change_url(history.hostile_name)).content.decode(),
        "overview": viewer.get(OVERVIEW).content.decode(),
    }
    for where, html in pages.items():
        assert "<script>document.title" not in html, where
        assert "<img src=x" not in html, where
        assert ESCAPED_PAYLOAD in html, where
    detail = pages["detail"]
    assert f'<pre class="mc-pre">{ESCAPED_PAYLOAD}</pre>' in detail  # output and error
    assert "&quot;text&quot;: &quot;&lt;script&gt;" in detail  # parameters


def test_overview_lists_every_managed_command_with_its_state(viewer, history):
    response = viewer.get(OVERVIEW)
    assert response.status_code == 200
    html = response.content.decode()
    rows = {
        name: classes
        for classes, name in re.findall(r'<tr class="([^"]*)" data-command="([^"]+)">', html)
    }
    assert rows["once"] == "mc-state-pending"
    assert rows["needs_once"] == "mc-state-pending"
    assert rows["noop_once"] == "mc-state-done"
    assert rows["fail"] == "mc-state-repeatable mc-failed-last"
    assert rows["talk"] == "mc-state-repeatable mc-failed-last"
    assert rows["noop_managed"] == "mc-state-repeatable"
    assert "noop_plain" not in rows  # a plain BaseCommand is not managed
    assert '<strong class="mc-pending-count">' in html
    assert f'href="{CHANGELIST}?command_name=needs_once"' in html
    assert "<code>once</code>, <code>noop_once</code>" in html  # needs_once requires
    assert f'href="{change_url(history.crashed)}"' in html
    assert "ValueError: the data is bad" in html


def test_the_overview_shows_its_commands_a_page_at_a_time(viewer, history, monkeypatch):
    monkeypatch.setattr(site._registry[CommandExecution], "list_per_page", 3)

    def listed(query=""):
        html = viewer.get(f"{OVERVIEW}{query}").content.decode()
        return re.findall(r'data-command="([^"]+)"', html), html

    every, _ = listed()
    first, html = listed("?p=1")
    second, _ = listed("?p=2")
    assert len(first) == 3 and first == every and not set(first) & set(second)
    count = int(re.search(r"(\d+) managed commands", html).group(1))
    assert count > 3  # the summary counts every command, not the page's
    assert '<p class="paginator" id="mc-pages">' in html
    assert "commands 1 to 3" in html
    last_page = -(-count // 3)
    assert (
        listed(f"?p={last_page + 5}")[0] == listed(f"?p={last_page}")[0]
    )  # past the end: the last


def test_history_link_of_the_overview_filters_the_list(viewer, history):
    assert listed_names(viewer.get(f"{CHANGELIST}?command_name=talk")) == ["talk"]


def test_admin_index_links_to_the_overview(viewer, history):
    index = viewer.get("/admin/")
    assert f'<a href="{CHANGELIST}overview/">' in index.content.decode()
    app_index = viewer.get("/admin/managed_commands/")
    assert f'<a href="{CHANGELIST}overview/">' in app_index.content.decode()


def test_scope_filter_is_hidden_for_an_unscoped_project(viewer, history):
    assert "?scope=" not in viewer.get(CHANGELIST).content.decode()


def test_scope_filter_lists_the_scopes_and_filters_by_one(viewer, settings):
    settings.MANAGED_COMMANDS = {"SCOPE": "tests.test_scopes.site_scope"}
    CommandExecution.objects.create(command_name="once", scope="site-1", status="succeeded")
    CommandExecution.objects.create(command_name="talk", scope="site-2", status="succeeded")
    page = viewer.get(CHANGELIST)
    assert '<a href="?scope=site-1">site-1</a>' in page.content.decode()
    assert '<a href="?scope=site-2">site-2</a>' in page.content.decode()
    assert listed_names(viewer.get(CHANGELIST, {"scope": "site-2"})) == ["talk"]


def test_overview_lists_invalid_definitions_next_to_unimportable_modules(viewer, settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.brokenapp"]
    html = viewer.get(OVERVIEW).content.decode()
    assert "<h2>Command modules that failed to import</h2>" in html
    assert "<li><code>import_error</code>: <code>ModuleNotFoundError: " in html
    assert "<h2>Managed commands with an invalid definition</h2>" in html
    assert (
        "<li><code>requires_itself</code>: <code>tests.brokenapp.management.commands."
        "requires_itself.Command.requires names the command itself (&#x27;requires_itself&#x27;)."
        "</code></li>"
    ) in html
    assert 'data-command="requires_itself"' not in html  # not among the valid commands
    assert 'data-command="requires_typo"' in html


def running_backfill(**fields):
    """A running run of a batch loop, 62 % done at 10 items a second."""
    values = {"tick_count": 1240, "tick_total": 2000, "tick_rate": 10.0, **fields}
    return CommandExecution.objects.create(command_name="slow", status="running", **values)


def test_list_shows_the_progress_of_batch_loops_only(viewer, history):
    running_backfill()
    html = viewer.get(CHANGELIST).content.decode()
    assert '<td class="field-progress_label">62 % (1,240 / 2,000), ETA 1 min</td>' in html
    # Django's empty value for the runs of make_history, which have no batch loops.
    assert html.count('<td class="field-progress_label">-</td>') == 4


def test_detail_shows_the_progress_of_a_run_that_resumed_another(viewer, history):
    earlier = CommandExecution.objects.create(command_name="slow", status="interrupted")
    run = running_backfill(throttled_seconds=12.5, resumed_from=earlier, at_least_once=True)
    html = viewer.get(change_url(run)).content.decode()
    assert re.search(r"<h2[^>]*>Progress</h2>", html)
    # Each value follows its label, in the box named after its field.
    fields = dict(
        re.findall(
            r'field-(\w+)">(?:\s*<div(?: class="flex-container")?>)*\s*<label[^>]*>[^<]*</label>'
            r'\s*<div class="readonly">(.*?)</div>',
            html,
        )
    )
    assert fields["progress_label"] == "62 % (1,240 / 2,000), ETA 1 min"
    assert (fields["tick_count"], fields["tick_total"]) == ("1240", "2000")
    assert fields["rate_label"] == "10.0"
    assert fields["eta_label"] == "1 min 16 s"
    assert fields["throttled_label"] == "12.5 s"
    assert fields["resumed_from_link"] == f'<a href="{change_url(earlier)}">#{earlier.pk}</a>'
    # Its help text sits between label and value on Django 6.1+: read its whole box.
    at_least_once = html.split('field-at_least_once">', 1)[1].split("field-stop_requested_at", 1)[0]
    assert 'alt="True"' in at_least_once
    assert fields["stop_requested_at"] == "-"


def test_detail_of_a_run_without_batch_loops_has_no_progress(viewer, history):
    html = viewer.get(change_url(history.crashed)).content.decode()
    assert not re.search(r"<h2[^>]*>Progress</h2>", html)
    assert "field-progress_label" not in html


def test_only_the_page_of_a_running_run_reloads_itself(viewer, history):
    refresh = '<meta http-equiv="refresh" content="5">'
    run = running_backfill()
    assert refresh in viewer.get(change_url(run)).content.decode()
    # Ended, but its end could not be recorded: it no longer changes.
    CommandExecution.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    assert refresh not in viewer.get(change_url(run)).content.decode()
    CommandExecution.objects.filter(pk=run.pk).update(status="succeeded", success=True)
    assert refresh not in viewer.get(change_url(run)).content.decode()
    assert refresh not in viewer.get(change_url(history.crashed)).content.decode()
    assert refresh not in viewer.get(CHANGELIST).content.decode()


def test_overview_marks_a_command_whose_outcome_is_unknown(viewer, history):
    CommandExecution.objects.create(
        command_name="once", run_once=True, lock_key="k", finished_at=timezone.now()
    )
    html = viewer.get(OVERVIEW).content.decode()
    state = html.split('data-command="once">', 1)[1].split('<td class="mc-state">')[1]
    state = state.split("</td>", 1)[0]
    assert ">outcome unknown</span>" in state and "mc-status-running" not in state


def test_overview_shows_the_progress_of_a_running_command(viewer, history):
    running_backfill()
    html = viewer.get(OVERVIEW).content.decode()
    assert '<div class="mc-progress">62 % (1,240 / 2,000), ETA 1 min</div>' in html
    assert html.count('class="mc-progress"') == 1


def test_a_run_whose_process_is_gone_shows_as_gone_without_an_eta(viewer, history):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    # Its process gone from this host; then silent on another host past its lease.
    dead = running_backfill(
        pid=child.pid, hostname=origin.hostname(), host_id=origin.host_identity(), process_token="1"
    )
    silent = dict(executed_at=timezone.now() - datetime.timedelta(hours=2), hostname="elsewhere")
    for run, reason in (
        (dead, f"process {child.pid} on {origin.hostname()} is no longer running"),
        (running_backfill(**silent, host_id="another-boot", pid=1), "no heartbeat from process 1"),
    ):
        html = viewer.get(CHANGELIST).content.decode()
        gone = re.search(r'class="mc-gone">([^<]*)</span>', html)
        assert gone and gone[1].startswith(reason) and "last heard from" in gone[1], html
        assert '<td class="field-progress_label">62 % (1,240 / 2,000)</td>' in html
        assert "ETA" not in html
        detail = viewer.get(change_url(run)).content.decode()
        assert re.search(r'field-eta_label">.*?<div class="readonly">-</div>', detail, re.S)
        overview = viewer.get(OVERVIEW).content.decode()
        assert '<span class="mc-badge mc-status-gone"' in overview
        assert f'<div class="mc-gone">{reason}' in overview
        assert '<div class="mc-progress">62 % (1,240 / 2,000)</div>' in overview
        assert "ETA" not in overview
        run.refresh_from_db()
        assert (run.status, run.lock_key, run.finished_at) == ("running", None, None)
        CommandExecution.objects.filter(pk=run.pk).delete()


def stop(client, *executions):
    return client.post(
        CHANGELIST,
        {"action": "request_stop", "_selected_action": [run.pk for run in executions]},
        follow=True,
    )


def stop_asked(run: CommandExecution) -> bool:
    """Whether a stop was asked of ``run``: on its row, or on SQLite in its stop file
    (removed here, so no later run with the same id finds it)."""
    path = claim.side_file(run._state.db or "default", run.pk, "stop")
    if path is None:
        run.refresh_from_db()
        return run.stop_requested_at is not None
    asked = claim.stop_file_asks(path, run.process_token)
    claim.remove_file(path)
    return asked


def test_a_permitted_user_asks_the_selected_running_runs_to_stop(
    client, django_user_model, history
):
    client.force_login(
        make_user(
            django_user_model, "operator", perms=["view_commandexecution", "stop_commandexecution"]
        )
    )
    assert "Ask the selected running runs to stop" in client.get(CHANGELIST).content.decode()
    running = running_backfill()
    asked_before = running_backfill(stop_requested_at=timezone.now() - datetime.timedelta(hours=1))
    response = stop(client, running, asked_before, history.crashed)
    assert [str(m) for m in response.context["messages"]] == [
        "Asked 2 running runs to stop: a loop over iterate() stops after its current batch, "
        "with its cursor saved; a command without one runs to its end."
    ]
    assert stop_asked(running)
    assert CommandExecution.objects.get(pk=asked_before.pk).stop_requested_at == (
        asked_before.stop_requested_at  # the first ask is kept
    )
    assert not stop_asked(history.crashed)
    response = stop(client, history.crashed)
    assert [str(m) for m in response.context["messages"]] == [
        "None of the selected runs is running."
    ]


def test_the_stop_action_needs_its_permission(client, django_user_model, history):
    client.force_login(
        make_user(
            django_user_model, "cleaner", perms=["view_commandexecution", "delete_commandexecution"]
        )
    )
    running = running_backfill()
    page = client.get(CHANGELIST).content.decode()
    assert 'value="delete_selected"' in page
    assert "request_stop" not in page
    stop(client, running)
    assert not stop_asked(running)


def _run(**fields):
    values = {"status": "succeeded", "success": True, "finished_at": timezone.now(), **fields}
    return CommandExecution.objects.create(command_name="fix_prices", **values)


def test_list_and_detail_say_who_started_a_run_and_from_which_release(viewer):
    run = _run(
        origin={
            "trigger": "admin",
            "os_user": "www-data",
            "django_user": "alice",
            "release": "v2.3.1",
        },
        metadata={"ticket": "OPS-7"},
    )
    listing = viewer.get(CHANGELIST).content.decode()
    assert "admin by alice (www-data) · v2.3.1" in listing
    page = viewer.get(change_url(run)).content.decode()
    assert "Started by" in page
    for shown in ("admin", "alice", "www-data", "v2.3.1", "&quot;ticket&quot;: &quot;OPS-7&quot;"):
        assert shown in page, shown


def test_the_release_filter_offers_the_recent_releases_and_filters_by_one(viewer):
    old = _run(origin={"trigger": "manage.py", "release": "v1"})
    new = _run(origin={"trigger": "manage.py", "release": "v2"})
    _run(origin=None)  # a run recorded before 0006 has no origin
    page = viewer.get(CHANGELIST).content.decode()
    assert "?release=v1" in page and "?release=v2" in page
    chosen = viewer.get(CHANGELIST, {"release": "v1"})
    assert listed_names(chosen) == ["fix_prices"]
    assert f"/{old.pk}/change/" in chosen.content.decode()
    assert f"/{new.pk}/change/" not in chosen.content.decode()


def test_a_dry_run_shows_what_it_would_have_written(viewer):
    run = _run(
        status="dry_run",
        success=False,
        dry_run=True,
        writes={"rows": {"shop_price": {"UPDATE": 1200}}, "statements": 3, "mails": 1},
    )
    page = viewer.get(change_url(run)).content.decode()
    assert "Would have written" in page
    assert "&quot;UPDATE&quot;: 1200" in page
    assert 'mc-status-dry_run">dry run<' in page
    plain = _run()
    assert "would have written" not in viewer.get(change_url(plain)).content.decode().lower()


needs_tasks = pytest.mark.skipif(
    not hasattr(settings, "TASKS"), reason="needs django.tasks (Django 6.0+) or django-tasks"
)
RUN_PENDING = reverse("admin:managed_commands_commandexecution_run_pending")


@pytest.fixture
def operator(client, django_user_model):
    """A staff user who may see the history and run commands on a task worker."""
    client.force_login(
        make_user(
            django_user_model, "operator", perms=["view_commandexecution", "run_managed_commands"]
        )
    )
    return client


def run_again(client, *executions):
    return client.post(
        CHANGELIST,
        {"action": "run_again", "_selected_action": [run.pk for run in executions]},
        follow=True,
    )


def shown_messages(response):
    return [str(message) for message in response.context["messages"]]


def failed_run(name, **fields):
    values = {"status": "failed", "success": False, "finished_at": timezone.now(), **fields}
    return CommandExecution.objects.create(command_name=name, **values)


def newest(name):
    return CommandExecution.objects.filter(command_name=name).latest("pk")


def test_a_permitted_user_is_offered_both_ways_to_run_commands(operator, history):
    assert 'value="run_again"' in operator.get(CHANGELIST).content.decode()
    overview = operator.get(OVERVIEW).content.decode()
    assert f'<form method="post" action="{RUN_PENDING}" class="mc-run-pending">' in overview
    assert 'name="csrfmiddlewaretoken"' in overview


def test_without_the_permission_neither_is_offered_nor_does_anything(
    client, django_user_model, history, django_capture_on_commit_callbacks
):
    client.force_login(
        make_user(
            django_user_model, "watcher", perms=["view_commandexecution", "stop_commandexecution"]
        )
    )
    assert "run_again" not in client.get(CHANGELIST).content.decode()
    assert "mc-run-pending" not in client.get(OVERVIEW).content.decode()
    before = CommandExecution.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        assert run_again(client, history.crashed).status_code == 200
        assert client.post(RUN_PENDING).status_code == 403
    assert CommandExecution.objects.count() == before


def test_running_pending_commands_is_post_only(operator, history):
    assert operator.get(RUN_PENDING).status_code == 405


@needs_tasks
def test_run_again_repeats_a_failed_run_with_its_parameters_for_the_user(
    operator, history, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = run_again(operator, history.crashed)
    again = newest("fail")
    assert again.pk != history.crashed.pk
    assert shown_messages(response) == [
        f"Enqueued 1 run for a task worker: fail (run #{again.pk})."
    ]
    # ImmediateBackend ran it: it crashed again, as the run it repeats did.
    assert again.status == CommandExecution.Status.FAILED
    assert again.error_message == "ValueError: the data is bad"
    assert again.parameters == history.crashed.parameters
    assert again.origin["trigger"] == "admin"
    assert again.origin["django_user"] == "operator"
    assert again.task_id


@needs_tasks
def test_run_again_gives_typed_options_back_to_the_commands_parser(
    operator, django_capture_on_commit_callbacks
):
    options = {"names": ["a", "b"], "password": None, "api_key": None, "dsn": None}
    earlier = failed_run(
        "with_options",
        parameters={"args": [], "options": {**options, "day": "2026-01-31", "count": 2}},
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_again(operator, earlier)
    again = newest("with_options")
    assert again.status == CommandExecution.Status.SUCCEEDED
    assert again.output == "names=['a', 'b'] count=2\n"
    assert again.parameters == earlier.parameters


@needs_tasks
def test_run_again_refuses_redacted_and_foreign_parameters_and_skips_done_commands(
    operator, history, django_capture_on_commit_callbacks
):
    secret = failed_run(
        "with_options",
        parameters={"args": [], "options": {"names": [], "password": "********", "count": 3}},
    )
    before = CommandExecution.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = run_again(operator, secret, history.hostile, history.succeeded)
    assert shown_messages(response) == [
        f"Run #{history.hostile.pk} of talk was not enqueued: The run of 'talk' cannot be "
        "repeated: its parameters were not recorded by a managed run.",
        f"Run #{secret.pk} of with_options was not enqueued: The run of 'with_options' cannot "
        "be repeated: the value of password was redacted when it was recorded.",
        "Not enqueued, as these run_once commands are done: noop_once.",
    ]
    assert CommandExecution.objects.count() == before


@needs_tasks
def test_run_again_of_a_run_once_command_holding_its_claim_is_an_error_message(
    operator, django_capture_on_commit_callbacks
):
    failed = [failed_run("once", run_once=True) for _ in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        response = run_again(operator, *failed)
    first, second = shown_messages(response)
    assert first.startswith(f"Run #{failed[1].pk} of once was not enqueued: ")
    assert "enqueued for a task worker" in first
    assert second == f"Enqueued 1 run for a task worker: once (run #{newest('once').pk})."
    assert newest("once").status == CommandExecution.Status.SUCCEEDED


@needs_tasks
def test_the_overview_runs_the_pending_commands_on_a_worker(
    operator, history, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(RUN_PENDING, follow=True)
    assert response.redirect_chain == [(OVERVIEW, 302)]
    assert shown_messages(response) == [
        f"Enqueued 2 runs for a task worker: needs_schema (run #{newest('needs_schema').pk}), "
        f"once (run #{newest('once').pk}).",
        "Will be enqueued as what they require succeeds on a worker: needs_once.",
    ]
    # Once ``once`` succeeded, its task enqueued ``needs_once``.
    for name in ("needs_schema", "once", "needs_once"):
        assert newest(name).status == CommandExecution.Status.SUCCEEDED, name
        assert newest(name).origin["django_user"] == "operator", name
    assert {newest(name).origin["trigger"] for name in ("once", "needs_once")} == {"admin"}
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(RUN_PENDING, follow=True)
    assert shown_messages(response) == ["No pending command to enqueue."]
    assert "mc-run-pending" not in response.content.decode()


def test_without_a_tasks_api_both_say_what_to_install(operator, history, monkeypatch):
    from managed_commands import tasks

    monkeypatch.setattr(tasks, "tasks_api", lambda: None)
    before = CommandExecution.objects.count()
    for response in (run_again(operator, history.crashed), operator.post(RUN_PENDING, follow=True)):
        [message] = shown_messages(response)
        assert message.startswith("Running managed commands on task workers needs django.tasks")
    assert CommandExecution.objects.count() == before


def readonly_values(html):
    """The value shown in each read-only field of a change page, by field name."""
    return dict(
        re.findall(
            r'field-(\w+)">(?:\s*<div(?: class="flex-container")?>)*\s*<label[^>]*>[^<]*</label>'
            r'\s*<div class="readonly">(.*?)</div>',
            html,
            flags=re.S,
        )
    )


def test_a_run_page_shows_the_empty_value_never_none(viewer):
    run = _run(origin=None, metadata=None)
    values = readonly_values(viewer.get(change_url(run)).content.decode())
    assert values["trigger_label"] == values["release_label"] == "-"
    assert values["django_user_label"] == values["os_user_label"] == "-"
    assert [name for name, shown in values.items() if "None" in shown] == []


def test_the_title_of_a_run_page_says_when_it_ended_and_after_how_long(viewer):
    ended = datetime.datetime(2026, 12, 7, 14, 5, 12, tzinfo=datetime.timezone.utc)
    run = _run(
        status="failed",
        success=False,
        executed_at=ended - datetime.timedelta(seconds=123),
        finished_at=ended,
        duration=123.0,
    )
    html = viewer.get(change_url(run)).content.decode()
    [title] = re.findall(r"<title>(.*?)</title>", html)
    assert "failed at 2026-12-07 14:05:12, 2 min 03 s" in title
    # The breadcrumbs too name the run by its end, not its start.
    assert "fix_prices failed at 2026-12-07 14:05:12" in html
    assert "14:03:09" not in html
    running = _run(status="running", success=False, executed_at=ended, finished_at=None)
    html = viewer.get(change_url(running)).content.decode()
    [title] = re.findall(r"<title>(.*?)</title>", html)
    assert "running since 2026-12-07 14:05:12" in title


COMMAND = """from managed_commands.base import ManagedBaseCommand


class Command(ManagedBaseCommand):
    help = "Added while the server runs."

    def handle(self, *args, **options):
        pass
"""


@pytest.mark.parametrize("where", ["overview", "list", "command page"])
def test_a_command_added_while_the_server_runs_is_shown_without_a_restart(
    viewer, tmp_path, monkeypatch, settings, where
):
    label = f"added_later_{uuid.uuid4().hex[:8]}"  # a new app: none imported before
    commands = tmp_path / label / "management" / "commands"
    commands.mkdir(parents=True)
    for package in (commands.parent.parent, commands.parent, commands):
        (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, label]
    url, shown = {
        "overview": (OVERVIEW, 'data-command="added_later"'),
        "list": (CHANGELIST, "?command_name=added_later"),
        "command page": (
            reverse("admin:managed_commands_commandexecution_command", args=["added_later"]),
            "Added while the server runs.",
        ),
    }[where]
    before = viewer.get(url)
    assert shown not in before.content.decode()

    (commands / "added_later.py").write_text(COMMAND)

    assert shown in viewer.get(url).content.decode()
