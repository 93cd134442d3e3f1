"""Recurring commands (#26): expected_every, late / failing / overrunning, the alerts,
the health check and the JSON view, in process (the history backdated as a clock)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import django
import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.log import AdminEmailHandler

from managed_commands import definition
from managed_commands.base import ManagedBaseCommand
from managed_commands.models import CommandCadence, CommandExecution
from managed_commands.signals import command_late
from managed_commands.status import CommandState, command_statuses
from managed_commands.testing.factories import CommandExecutionFactory
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "a-long-random-health-token"


@pytest.fixture(autouse=True)
def cadence_app():
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "tests.cadenceapp"]):
        yield


def statuses():
    return {s.command.name: s for s in command_statuses()}


def backdate(hours, **filters):
    then = timezone.now() - timedelta(hours=hours)
    CommandExecution.objects.filter(**filters).update(executed_at=then, finished_at=then)


# -- the declaration ------------------------------------------------------------


def make(**attributes):
    return type("Command", (ManagedBaseCommand,), {"__module__": "x.commands.c", **attributes})


def test_a_cadence_is_a_timedelta_or_seconds_with_a_default_grace():
    hourly = definition.read(make(expected_every=timedelta(hours=1)))
    assert (hourly.expected_every, hourly.expected_grace) == (3600.0, 360.0)
    minutely = definition.read(make(expected_every=120, expected_duration_max=30))
    assert (minutely.expected_grace, minutely.expected_duration_max) == (60.0, 30.0)
    assert definition.read(make(expected_every=60, expected_grace=5)).expected_grace == 5.0


def test_bad_cadences_are_check_errors_with_hints():
    found = definition.problems(make(expected_every=-1, expected_duration_max="1h"))
    assert [p.id for p in found] == ["managed_commands.E033", "managed_commands.E033"]
    assert "a timedelta or seconds" in found[0].hint
    (once,) = definition.problems(make(run_once=True, expected_every=3600))
    assert once.id == "managed_commands.E034" and "never expected again" in once.message
    (grace,) = definition.problems(make(expected_grace=60))
    assert grace.id == "managed_commands.E034"


# -- the states -------------------------------------------------------------------


def test_a_success_two_hours_old_is_late_then_recovers_with_the_next():
    run_command("hourly")
    assert statuses()["hourly"].shown_state == CommandState.REPEATABLE
    backdate(2)
    late = statuses()["hourly"]
    assert late.shown_state == CommandState.LATE and late.alarms == (CommandState.LATE,)
    assert late.late_since == late.last_success.executed_at + timedelta(seconds=3600 + 360)
    run_command("hourly")
    assert statuses()["hourly"].alarms == ()


def test_never_run_is_late_counted_from_when_the_cadence_was_first_seen():
    assert statuses()["hourly"].alarms == ()  # first seen now, not at the epoch
    seen = CommandCadence.objects.get(command_name="hourly", scope="")
    CommandCadence.objects.update(first_seen_at=seen.first_seen_at - timedelta(hours=2))
    assert statuses()["hourly"].shown_state == CommandState.LATE


def test_a_failed_newest_run_is_failing():
    with pytest.raises(RuntimeError):
        run_command("hourly", fail=True)
    status = statuses()["hourly"]
    assert status.shown_state == CommandState.FAILED and status.alarms == (CommandState.FAILED,)


def test_a_run_past_expected_duration_max_is_overrunning():
    CommandExecutionFactory(
        command_name="bounded",
        status=CommandExecution.Status.RUNNING,
        success=False,
        finished_at=None,
        executed_at=timezone.now() - timedelta(seconds=10),
    )
    status = statuses()["bounded"]
    assert status.alarms == (CommandState.OVERRUNNING,) and status.shown_state == "overrunning"


def test_the_status_read_stays_constant_with_recurring_commands():
    def sent():
        with CaptureQueriesContext(connection) as captured:
            statuses()
        # The statements, not the transaction around the insert.
        return sum(q["sql"].split()[0] not in ("BEGIN", "COMMIT") for q in captured)

    first = sent()  # records the cadences first seen: one insert
    before = sent()
    for _ in range(20):
        CommandExecutionFactory(command_name="hourly", failed=True)
        CommandExecutionFactory(command_name="bounded")
    assert (first, before, sent()) == (4, 3, 3)


# -- the alerts ---------------------------------------------------------------------


def test_a_late_spell_is_logged_and_signalled_once(caplog):
    heard = []

    def receiver(sender, **kwargs):
        heard.append((sender, kwargs["scope"], kwargs["last_success"].pk))

    command_late.connect(receiver)
    try:
        run_command("hourly")
        backdate(2)
        with caplog.at_level(logging.WARNING, "managed_commands"):
            for _ in range(3):
                run_command_listing = run_command("show_managed_commands")
        assert "[L] hourly" in run_command_listing.stdout
        late = [r for r in caplog.records if "is late" in r.getMessage()]
        assert len(late) == 1 and late[0].levelno == logging.WARNING
        assert "'hourly' is late: late since" in late[0].getMessage()
        assert len(heard) == 1 and heard[0][:2] == ("hourly", "")
        # The next success ends the spell; the next lateness is another spell.
        run_command("hourly")
        backdate(2, status="succeeded")
        with caplog.at_level(logging.WARNING, "managed_commands"):
            statuses_seen = run_command("show_managed_commands", "--late")
        assert "hourly" in statuses_seen.stdout and len(heard) == 2
    finally:
        command_late.disconnect(receiver)


# Admins as Django 6.0 writes them (addresses; before it, (name, address) pairs), and
# Django 6.1's MAILERS (it warns when none is configured; before it, the test
# runner's locmem EMAIL_BACKEND is the one).
LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
MAIL_TO_OPS = {
    "ADMINS": ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")],
    **({"MAILERS": LOCMEM} if django.VERSION >= (6, 1) else {}),
}


def test_a_failed_run_sends_one_mail_through_admin_email_handler():
    logger = logging.getLogger("managed_commands")
    handler = AdminEmailHandler()
    handler.setLevel(logging.ERROR)
    logger.addHandler(handler)
    try:
        with override_settings(**MAIL_TO_OPS):
            mail.outbox.clear()
            with pytest.raises(RuntimeError):
                run_command("hourly", fail=True)
    finally:
        logger.removeHandler(handler)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    run = CommandExecution.objects.get()
    assert "failed: RuntimeError: supplier API answered 503" in message.subject
    assert f"/admin/managed_commands/commandexecution/{run.pk}/change/" in message.body
    assert "synced batch 30" in message.body and "synced batch 10" not in message.body


# -- where people look ---------------------------------------------------------------


def test_late_in_json_and_the_gate(capsys):
    run_command("hourly")
    backdate(2)
    listed = run_command("show_managed_commands", "--json")
    (hourly,) = [c for c in json.loads(listed.stdout) if c["name"] == "hourly"]
    assert hourly["shown_state"] == "late" and hourly["alarms"] == ["late"]
    assert hourly["late_since"] and hourly["expected_every"] == 3600.0
    gate = run_command("show_managed_commands", "--check-cadence")
    assert gate.exit_code == 1
    assert gate.stderr.splitlines()[0].startswith("hourly: late since ")
    assert "1 recurring command is late, failing or overrunning." in gate.stderr


def test_the_health_check_over_http_names_the_late_command(client):
    pytest.importorskip("health_check")
    run_command("hourly")
    assert client.get("/ht/?format=json").status_code == 200
    backdate(2)
    answer = client.get("/ht/?format=json")
    assert answer.status_code == 500
    (text,) = answer.json().values()
    assert text.startswith("Unavailable: 1 recurring command: hourly: late since ")
    run_command("hourly")
    assert client.get("/ht/?format=json").status_code == 200


def test_the_json_view_is_for_staff_or_the_token(client, admin_client):
    run_command("hourly")
    backdate(2)
    assert client.get("/mc/cadence/").status_code == 403
    answer = admin_client.get("/mc/cadence/")
    assert answer.status_code == 503 and answer.json()["ok"] is False
    assert [a["name"] for a in answer.json()["alarms"]] == ["hourly"]
    with override_settings(MANAGED_COMMANDS={"HEALTH_TOKEN": TOKEN}):
        assert client.get("/mc/cadence/", headers={"Authorization": "Bearer no"}).status_code == 403
        given = client.get("/mc/cadence/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert given.status_code == 503 and given.json()["alarms"][0]["alarms"] == ["late"]


def test_the_admin_overview_has_a_cadence_column_and_filter(admin_client):
    run_command("hourly")
    run_command("bounded")
    backdate(2, command_name="hourly")
    page = admin_client.get("/admin/managed_commands/commandexecution/overview/").content.decode()
    assert '<th scope="col">Cadence</th>' in page
    assert 'class="mc-state-repeatable mc-late" data-command="hourly"' in page
    assert "1 recurring command late, failing or overrunning" in page
    only = admin_client.get("/admin/managed_commands/commandexecution/overview/?cadence=alarm")
    text = only.content.decode()
    assert 'data-command="hourly"' in text and 'data-command="bounded"' not in text
