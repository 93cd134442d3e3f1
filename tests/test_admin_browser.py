"""The admin in a real browser (tests/browsers.py), against a live server in this process."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from managed_commands.models import CommandExecution
from managed_commands.origin import os_user
from managed_commands.testing.utils import run_command
from tests.admin_history import PAYLOAD, make_history
from tests.browsers import expect, log_in, screenshot, screenshots

CHANGELIST = reverse("admin:managed_commands_commandexecution_changelist")
OVERVIEW = reverse("admin:managed_commands_commandexecution_overview")


@pytest.fixture
def history(transactional_db):
    return make_history()


@pytest.fixture
def page(browser, live_server, history):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def staff(transactional_db):
    return get_user_model().objects.create_superuser("admin", password="secret-pw")


def results(page):
    return page.locator("#result_list th.field-command_name a")


def test_staff_filters_searches_and_reads_a_failed_run(page, staff, history):
    log_in(page, "admin", "secret-pw")
    page.get_by_role("link", name="Command executions", exact=True).first.click()
    expect(results(page)).to_have_text([PAYLOAD, "talk", "fail", "noop_once"])
    expect(page.locator("#result_list .mc-status-failed")).to_have_count(2)
    screenshot(page, "list")

    page.locator("#changelist-filter").get_by_role("link", name="failed", exact=True).click()
    expect(results(page)).to_have_text(["talk", "fail"])

    page.fill("#searchbar", "the data is bad")
    page.press("#searchbar", "Enter")
    expect(results(page)).to_have_text(["fail"])

    results(page).first.click()
    traceback = page.locator(".field-traceback_block pre")
    expect(traceback).to_have_text(re.compile(r"^Traceback \(most recent call last\):\n"))
    expect(traceback).to_have_text(re.compile(r"ValueError: the data is bad\s*$"))
    expect(page.locator("textarea, input[name=_save]")).to_have_count(0)
    screenshot(page, "detail")


def test_overview_shows_pending_commands_and_links_to_history(page, staff, history):
    log_in(page, "admin", "secret-pw")
    page.click("#managed-commands-overview-link a")
    pending = page.locator("tr.mc-state-pending")
    expect(pending.locator("th")).to_have_text(["needs_once", "needs_schema", "once"])
    expect(pending.locator(".mc-state-badge-pending")).to_have_text(["pending"] * 3)
    expect(page.locator("tr[data-command=noop_once] .mc-state .mc-badge")).to_have_text("done")
    # At 1280 px the whole table fits its box (a long error wraps).
    box = page.locator("#changelist .results")
    assert box.evaluate("box => box.scrollWidth <= box.clientWidth")
    screenshots(page, "overview")

    page.locator("tr[data-command=fail]").get_by_role("link", name="History").click()
    expect(results(page)).to_have_text(["fail"])


def test_the_overview_shows_a_late_command_and_keeps_only_the_alarming_ones(page, staff, history):
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "tests.cadenceapp"]):
        run_command("hourly")  # expected every hour
        run_command("bounded")  # and on time
        CommandExecution.objects.filter(command_name="hourly").update(
            executed_at=timezone.now() - timedelta(hours=2)
        )
        log_in(page, "admin", "secret-pw")
        page.goto(OVERVIEW)
        expect(page.locator(".mc-alarm-count")).to_have_text(
            "1 recurring command late, failing or overrunning"
        )
        expect(page.locator("tr[data-command=hourly] .mc-cadence .mc-badge")).to_have_text("late")
        expect(page.locator("tr[data-command=bounded] .mc-cadence .mc-badge")).to_have_count(0)
        screenshot(page, "overview-late")

        page.click("#mc-filter-alarms")
        expect(page).to_have_url(re.compile(r"\?cadence=alarm$"))
        expect(page.locator("tr[data-command] th")).to_have_text(["hourly"])


def test_the_list_shows_the_progress_of_a_running_run(page, staff, history):
    CommandExecution.objects.create(
        command_name="slow", status="running", tick_count=1240, tick_total=2000, tick_rate=10.0
    )
    log_in(page, "admin", "secret-pw")
    page.goto(CHANGELIST)
    running = page.locator("#result_list tr", has=page.locator(".mc-status-running"))
    expect(running.locator("td.field-progress_label")).to_have_text(
        "62 % (1,240 / 2,000), ETA 1 min"
    )
    screenshot(page, "list-progress")


@pytest.mark.parametrize("where", ["list", "detail", "overview"])
def test_hostile_output_shows_as_text(page, staff, history, where):
    log_in(page, "admin", "secret-pw")
    url = {
        "list": CHANGELIST,
        "detail": reverse(
            "admin:managed_commands_commandexecution_change", args=[history.hostile.pk]
        ),
        "overview": reverse("admin:managed_commands_commandexecution_overview"),
    }[where]
    page.goto(url)
    shown = {
        "list": results(page).first,
        "detail": page.locator(".field-output_block pre"),
        "overview": page.locator("tr[data-command=talk] .mc-error"),
    }[where]
    expect(shown).to_have_text(PAYLOAD)
    page.wait_for_load_state("load")  # the broken image, were it an element, has fired
    title = page.title()
    assert title.endswith("| Django site admin")
    assert "pwned" not in title
    expect(page.locator("img[src=x]")).to_have_count(0)
    expect(page.locator("script", has_text="pwned")).to_have_count(0)


def test_non_staff_user_is_refused(page, django_user_model, history):
    django_user_model.objects.create_user("clerk", password="secret-pw")
    log_in(page, "clerk", "secret-pw")
    expect(page.locator(".errornote")).to_contain_text(
        "Please enter the correct username and password for a staff account."
    )
    page.goto(CHANGELIST)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    expect(page.locator("#result_list")).to_have_count(0)


def staff_with(username, *perms):
    user = get_user_model().objects.create_user(username, password="secret-pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="managed_commands", codename__in=perms)
    )
    return user


def action_choices(page):
    # Only the real actions: the blank choice's label differs between Django versions
    # ("---------" before 6.1, "- Select an option -" from 6.1).
    return page.locator('select[name=action] option:not([value=""])')


@pytest.mark.skipif(not hasattr(settings, "TASKS"), reason="needs django.tasks or django-tasks")
def test_a_permitted_user_runs_a_failed_run_again_and_the_pending_commands(page, history):
    staff_with("runner", "view_commandexecution", "run_managed_commands")
    log_in(page, "runner", "secret-pw")
    page.goto(CHANGELIST)
    failed = page.locator("#result_list tr", has=page.get_by_role("link", name="fail", exact=True))
    failed.locator("input.action-select").check()
    page.select_option(
        "select[name=action]", label="Run again on a worker, with the same parameters"
    )
    page.click("button[name=index]")
    expect(page.locator(".messagelist .success")).to_have_text(
        re.compile(r"^Enqueued 1 run for a task worker: fail \(run #\d+\)\.$")
    )
    # The test settings' ImmediateBackend ran it at once: it crashed again.
    expect(results(page).first).to_have_text("fail")
    expect(page.locator("#result_list td.field-started_by_label").first).to_have_text(
        "admin by runner (" + os_user() + ")"
    )
    screenshot(page, "run-again")

    page.goto(OVERVIEW)
    page.get_by_role("button", name="Run pending commands on a worker").click()
    # The rest of the chain runs as what it requires succeeds (here at once, in the
    # live server's thread): which message lists which command depends on that timing.
    expect(page.locator(".messagelist .success")).to_have_text(
        re.compile(r"^Enqueued \d+ runs? for a task worker: needs_schema \(run #\d+\)")
    )
    expect(page.locator("tr.mc-state-pending")).to_have_count(0)
    expect(page.locator("#mc-run-pending")).to_have_count(0)  # nothing left to run
    screenshot(page, "run-pending")


def test_a_user_without_the_permission_is_offered_neither(page, history):
    staff_with("watcher", "view_commandexecution", "stop_commandexecution")
    log_in(page, "watcher", "secret-pw")
    page.goto(CHANGELIST)
    expect(action_choices(page)).to_have_text(["Ask the selected running runs to stop"])
    page.goto(OVERVIEW)
    expect(page.locator("tr.mc-state-pending")).to_have_count(3)
    expect(page.locator("#mc-run-pending")).to_have_count(0)
    expect(page.get_by_role("button", name="Run pending commands on a worker")).to_have_count(0)


def overlap(first, second):
    """Whether two elements' boxes on the page intersect."""
    a, b = first.bounding_box(), second.bounding_box()
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_at_800_pixels_no_button_covers_a_title_and_nothing_widens_the_page(page, staff, history):
    page.set_viewport_size({"width": 800, "height": 900})
    log_in(page, "admin", "secret-pw")
    page.goto(CHANGELIST)
    assert not overlap(page.locator("#content h1"), page.locator(".object-tools"))
    results(page).first.click()
    assert not overlap(page.locator("#content h1"), page.locator(".object-tools"))
    command_page = reverse("admin:managed_commands_commandexecution_command", args=["talk"])
    for url in (CHANGELIST, OVERVIEW, command_page, page.url):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 800, url
    # The overview's table scrolls sideways, a command's state in sight.
    page.goto(OVERVIEW)
    box = page.locator("tr[data-command=once] .mc-state-badge-pending").bounding_box()
    assert box["x"] + box["width"] <= 800
