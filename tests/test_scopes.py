"""A scope from MANAGED_COMMANDS["SCOPE"] (here a site id): run_once and requires per scope."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings

from managed_commands.checks import check_settings
from managed_commands.conf import current_scope
from managed_commands.exceptions import NotMultiTenant
from managed_commands.status import command_statuses
from managed_commands.tenants import statuses_by_tenant
from managed_commands.testing.utils import run_command

SITE = {"id": ""}
SEEN = []


def site_scope(connection):
    SEEN.append(connection)
    return SITE["id"]


@pytest.fixture
def site():
    SEEN.clear()
    with override_settings(MANAGED_COMMANDS={"SCOPE": "tests.test_scopes.site_scope"}):
        yield SITE
    SITE["id"] = ""


def in_site(site_id, name, *args):
    SITE["id"] = site_id
    return run_command(name, *args)


@pytest.mark.django_db(transaction=True)
def test_run_once_and_requires_hold_per_scope(site):
    assert in_site("site-1", "once").stdout == "once: done\n"
    assert in_site("site-1", "once").stdout.startswith("Skipped 'once'")
    refused = in_site("site-2", "needs_once")
    assert refused.exit_code == 1 and "requires 'once', 'noop_once'" in refused.stderr
    assert in_site("site-2", "once").stdout == "once: done\n"
    assert in_site("site-2", "noop_once").exit_code == 0
    done = in_site("site-2", "needs_once")
    assert (done.exit_code, done.execution.scope) == (0, "site-2")
    assert in_site("site-1", "needs_once").exit_code == 1
    SITE["id"] = "site-1"
    states = {s.command.name: s.state for s in command_statuses()}
    assert (states["once"], states["noop_once"], states["needs_once"]) == (
        "done",
        "pending",
        "pending",
    )
    assert {s.command.name: s.state for s in command_statuses(scope="site-2")}["needs_once"] == (
        "done"
    )


def test_the_scope_callable_gets_the_commands_connection(site):
    SITE["id"] = 7
    assert current_scope() == "7"
    assert len(SEEN) == 1 and SEEN[0] is connections["default"]


def test_without_a_callable_or_django_tenants_the_scope_is_empty():
    assert current_scope() == ""


def test_across_tenants_needs_django_tenants():
    with pytest.raises(NotMultiTenant, match="need django-tenants, which is not in INSTALLED_APPS"):
        statuses_by_tenant()


@pytest.mark.parametrize(
    ("settings_value", "message", "expected_id"),
    [
        (
            {"DATABASE": "nope"},
            "MANAGED_COMMANDS['DATABASE'] must be None or an alias of DATABASES, not 'nope'.",
            "managed_commands.E016",
        ),
        (
            {"SCOPE": "tests.no_such_module.scope"},
            "MANAGED_COMMANDS['SCOPE'] cannot be imported",
            "managed_commands.E017",
        ),
        (
            {"SCOPE": "tests.test_scopes.SITE"},
            "MANAGED_COMMANDS['SCOPE'] names {'id': ''}, which is not callable.",
            "managed_commands.E017",
        ),
        (
            {"SCOPE": 3},
            "MANAGED_COMMANDS['SCOPE'] is not a callable or a dotted path, but 3.",
            "managed_commands.E017",
        ),
    ],
)
def test_bad_database_or_scope_settings_are_reported_by_the_check(
    settings_value, message, expected_id
):
    with override_settings(MANAGED_COMMANDS=settings_value):
        [error] = check_settings()
    assert error.id == expected_id
    assert error.msg.startswith(message)


def test_good_database_and_scope_settings_pass_the_check():
    good = {"DATABASE": "default", "SCOPE": "tests.test_scopes.site_scope"}
    with override_settings(MANAGED_COMMANDS=good):
        assert check_settings() == []


@pytest.mark.django_db(transaction=True)
def test_run_pending_commands_names_the_scope_it_reports_for(site):
    assert in_site("site-1", "run_pending_commands", "--plan").stdout.startswith(
        "Would run 4 pending commands in scope 'site-1', in this order:\n"
    )
    assert in_site("site-1", "run_pending_commands", "--fake").stdout.endswith(
        "Faked 4 commands in scope 'site-1': recorded as done, not run.\n"
    )
    assert in_site("site-1", "run_pending_commands").stdout == (
        "No pending run_once commands in scope 'site-1'.\n"
    )
    # The unscoped project's output stays as it was.
    assert in_site("", "run_pending_commands").stdout.startswith("Running 4 pending commands: ")
