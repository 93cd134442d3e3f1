"""The admin console end to end, as an operator meets it: a staff user in headless
Chromium (tests/browsers.py), the admin served by a real ``runserver`` process and the
runs done by a real ``db_worker`` (django-tasks-db), both on the one database of a
ProcessProject. One flow per backend: fill the command's form, preview it on the
worker, run it for real, watch the live panel move without a reload, stop it, resume
it, see it done; then read the database and the logs.

Every process started here is bounded in time and killed, by its PID, on the way out.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.urls import reverse

from tests import backends
from tests.browsers import expect, log_in, screenshots
from tests.processes import MANAGE, TABLE, ProcessProject
from tests.workers import Worker, extra, require_package, workers

pytestmark = pytest.mark.backends("sqlite", "postgresql")

ENV = {"MC_TEST_TASKS": "db", "MC_TEST_EXTRA_APPS": "tests.batchapp"}
OVERVIEW = reverse("admin:managed_commands_commandexecution_overview")
SECRET = "tok-5c1f0a93-never-shown"
PASSWORD = "operator-pw-4417"
#: console_fix fixes the first LIMIT of ITEMS items, BATCH a batch, PAUSE s after each:
#: 24 batches, about 10 s, long enough to watch, stop and resume. A batch every 0.4 s
#: against a poll every second: the page shows batches at every phase of its poll.
ITEMS, LIMIT, BATCH, PAUSE = 100, 96, 4, 0.4
#: What the items' counter holds before: console_fix --mode reset sets it to 0.
BEFORE = 5
#: A staff user who may view, stop and run console_fix (its own permission), nothing more.
OPERATOR = f"""
from django.contrib.auth.models import Permission, User
user = User.objects.create_user("operator", password="{PASSWORD}", is_staff=True)
perms = Permission.objects.filter(
    content_type__app_label="managed_commands",
    codename__in=["view_commandexecution", "stop_commandexecution", "run_console_fix"],
)
assert perms.count() == 3, list(perms)
user.user_permissions.set(perms)
"""
#: Marks the document (a reload would drop the mark) and notes, each time the live
#: panel's count is written, when, the progress bar's value and the time left shown.
WATCH = """() => {
    window.__mark = 1;
    window.__shown = [];
    const note = () => window.__shown.push([
        Date.now(),
        document.getElementById("mc-progress").value,
        document.getElementById("mc-eta").textContent,
    ]);
    new MutationObserver(note).observe(
        document.getElementById("mc-count"), {childList: true, characterData: true, subtree: true}
    );
}"""


@pytest.fixture(scope="module")
def console_project(backend, tmp_path_factory):
    """A database migrated with django_tasks_db's tables and the batch app's items."""
    require_package("django_tasks_db", "-e '.[tasks]'")
    project = ProcessProject(backend, tmp_path_factory.mktemp(f"console-{backend}"))
    project.env.update(ENV)
    project.create()
    yield project
    project.drop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def site(project: ProcessProject) -> Iterator[tuple[str, Worker, Worker]]:
    """The admin served by ``runserver`` on a free port, and one ``db_worker``: the
    server's URL and both processes, each waited for until ready."""
    port = free_port()

    def server(name: str) -> list[str]:
        return [str(MANAGE), "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"]

    def worker(name: str) -> list[str]:
        return [str(MANAGE), "db_worker", "--interval", "0.1", "--no-startup-delay"]

    with (
        workers(project, server, 1, ready="Quit the server with") as (served,),
        workers(project, worker, 1, ready="Starting worker") as (working,),
    ):
        yield f"http://127.0.0.1:{port}", served, working


class Bodies(list[tuple[str, str]]):
    """Every admin response the browser got (URL, text), read on its way (a route)."""

    def route(self, route: Any) -> None:
        response = route.fetch(max_redirects=0)
        self.append((route.request.url, response.text()))
        route.fulfill(response=response)


class Commits(threading.Thread):
    """When each progress count of run ``pk`` was first committed: its row read every
    ``POLL`` s, so each moment is at most one poll (and one read) after the commit."""

    POLL = 0.02

    def __init__(self, project: ProcessProject, pk: int) -> None:
        super().__init__(daemon=True)
        self.project = project
        self.query = f"SELECT tick_count FROM {TABLE} WHERE id = {int(pk)}"
        self.seen: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        with backends.connect(self.project.backend, self.project.name) as conn:
            cursor = conn.cursor()
            while not self.done.wait(self.POLL):
                cursor.execute(self.query)
                [(count,)] = cursor.fetchall()
                if count is not None:
                    self.seen.setdefault(int(count), time.time())

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def seconds(shown: str) -> float | None:
    """``"3 min 05 s"`` (``human_duration``) in seconds; None for "—"."""
    units = {"h": 3600, "min": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"([\d.]+) (h|min|s|ms)\b", shown)
    return sum(float(number) * units[unit] for number, unit in parts) if parts else None


def delays(shown: list[list[Any]], committed: dict[int, float]) -> list[float]:
    """For each count committed while the page watched: seconds until the page showed
    it, or a later one (a poll shows the newest count, skipping those between)."""
    moments = [(moment / 1000, int(value)) for moment, value, _eta in shown]
    watched_from, last = moments[0][0], max(value for _, value in moments)
    return [
        min(moment for moment, value in moments if value >= count) - at
        for count, at in committed.items()
        if at > watched_from and count <= last
    ]


def items(project: ProcessProject) -> dict[int, int]:
    rows = project.sql("SELECT number, processed FROM batchmodels_item", database=project.name)
    return dict(rows)


def run_pk(page: Any) -> int:
    expect(page).to_have_url(re.compile(r"/commandexecution/\d+/change/$"))
    return int(re.findall(r"/(\d+)/change/$", page.url)[0])


def fill_form(page: Any) -> None:
    form = page.locator("#mc-command-form")
    form.locator("[name=limit]").fill(str(LIMIT))
    form.locator("[name=mode]").select_option("reset")
    form.locator("[name=notify]").check()
    form.locator("[name=since]").fill("2026-01-15")
    form.locator("[name=api_token]").fill(SECRET)
    form.locator("[name=batch_size]").fill(str(BATCH))
    form.locator("[name=pause]").fill(str(PAUSE))


def expect_the_values_but_not_the_secret(page: Any) -> None:
    """The command page, filled with the values of an earlier run but its secret."""
    form = page.locator("#mc-command-form")
    expect(form.locator("[name=limit]")).to_have_value(str(LIMIT))
    expect(form.locator("[name=mode]")).to_have_value("reset")
    expect(form.locator("[name=notify]")).to_be_checked()
    expect(form.locator("[name=since]")).to_have_value("2026-01-15")
    expect(form.locator("[name=api_token]")).to_have_value("")


def test_an_operator_previews_runs_watches_stops_and_resumes_a_fix(
    console_project, browser, report
):
    project = console_project
    assert project.run("seed_items", "--count", str(ITEMS)).returncode == 0
    project.sql(f"UPDATE batchmodels_item SET processed = {BEFORE}", database=project.name)
    made = project.run("shell", "-c", OPERATOR)
    assert made.returncode == 0, made.stderr
    bodies = Bodies()
    with site(project) as (url, server, worker):
        context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        context.set_default_timeout(30_000)
        context.route(re.compile(r"^http://127\.0\.0\.1:\d+/admin/"), bodies.route)
        page = context.new_page()
        try:
            watched = operate(page, project)
        finally:
            context.close()
    logs = server.output() + worker.output()

    dry, stopped, resumed = rows = project.rows("console_fix")
    assert [row["status"] for row in rows] == ["dry_run", "interrupted", "succeeded"], logs
    origins = [extra(project, row["id"])["origin"] for row in rows]
    assert [(o["trigger"], o["django_user"]) for o in origins] == [("admin", "operator")] * 3
    assert project.sql(f"SELECT resumed_from_id FROM {TABLE} WHERE id = ?", (resumed["id"],)) == [
        (stopped["id"],)
    ]
    # The dry run wrote nothing; the stopped run and the one that resumed it fixed
    # each item up to the limit once between them, and no other.
    assert items(project) == {n: 0 if n <= LIMIT else BEFORE for n in range(1, ITEMS + 1)}
    assert "since=2026-01-15 token given=True" in dry["output"]
    assert "console_fix: done" in resumed["output"]

    # The secret reached the command, and nothing else.
    assert any("/watch/" in address for address, _ in bodies), [a for a, _ in bodies]
    assert [address for address, body in bodies if SECRET in body] == []
    history = project.sql(f"SELECT * FROM {TABLE}")
    assert [row for row in history if SECRET in repr(row)] == []
    assert SECRET not in logs

    figures = delays(*watched)
    assert figures and max(figures) + Commits.POLL <= 2.0, figures
    report(
        f"console ({project.backend}): a batch's progress showed on the running page "
        f"{max(figures):.2f} s after its commit at most, {sum(figures) / len(figures):.2f} s "
        f"on average ({len(figures)} batches; commits seen by reading the row every "
        f"{Commits.POLL * 1000:.0f} ms)"
    )


def operate(page: Any, project: ProcessProject) -> tuple[list[list[Any]], dict[int, float]]:
    """What the operator does in the browser; returns what the running page showed
    (``WATCH``) and when the database had each count."""
    log_in(page, "operator", PASSWORD)
    page.goto(OVERVIEW)
    page.locator("tr[data-command=console_fix] a.mc-command-link").click()
    fill_form(page)
    screenshots(page, "console-command")
    # A value the parser refuses comes back with its message, the secret not typed in.
    form = page.locator("#mc-command-form")
    form.locator("[name=limit]").fill("ten")
    page.click("button[name=action][value=preview]")
    expect(form.locator(".field-limit .errorlist")).to_have_text(
        "argument --limit: invalid int value: 'ten'"
    )
    expect(form.locator("[name=api_token]")).to_have_value("")
    form.locator("[name=limit]").fill(str(LIMIT))
    form.locator("[name=api_token]").fill(SECRET)

    page.click("button[name=action][value=preview]")
    writes = page.locator("#mc-writes")
    expect(writes).to_contain_text("batchmodels_item", timeout=60_000)
    expect(writes.locator("tr", has_text="batchmodels_item")).to_contain_text(str(LIMIT))
    assert set(items(project).values()) == {BEFORE}
    screenshots(page, "console-preview")

    # The secret was stored redacted: "Run for real" asks for it again.
    page.click("#mc-run-for-real")
    expect_the_values_but_not_the_secret(page)
    page.locator("#mc-command-form [name=api_token]").fill(SECRET)
    page.click("button[name=action][value=run]")
    commits = Commits(project, run_pk(page))
    commits.start()
    try:
        expect(page.locator("#mc-live")).to_be_visible()
        page.evaluate(WATCH)
        # Five counts shown, each by the live panel: no reload in between.
        page.wait_for_function(
            "() => new Set(window.__shown.map(s => s[1]).filter(v => v > 0)).size >= 5"
        )
        screenshots(page, "console-running")
        shown = page.evaluate("window.__shown")
        assert page.evaluate("window.__mark") == 1
        stop = page.locator("#mc-stop")
        expect(stop, "the page of a running run offers Stop, without a reload").to_be_visible(
            timeout=5_000
        )
        stop.click()
        expect(page.locator("#mc-resume")).to_be_visible()
        expect(page.locator(".field-status_label .mc-status-interrupted")).to_be_visible()
    finally:
        commits.stop()
    values = [value for _, value, _ in shown]
    assert values == sorted(values) and values[-1] < LIMIT, shown
    left = [seconds(eta) for _, value, eta in shown if value > 0 and seconds(eta) is not None]
    assert len(left) >= 3 and left[-1] < left[0], shown

    page.click("#mc-resume")
    expect_the_values_but_not_the_secret(page)
    page.locator("#mc-command-form [name=api_token]").fill(SECRET)
    page.click("button[name=action][value=run]")
    run_pk(page)
    expect(page.locator(".field-status_label .mc-status-succeeded")).to_be_visible(timeout=60_000)
    page.goto(OVERVIEW)
    screenshots(page, "console-overview")
    return shown, commits.seen
