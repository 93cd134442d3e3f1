"""The notice after ``migrate``: shown when something is pending, never failing migrate."""

from __future__ import annotations

import io
import logging

import pytest
from django.db import DatabaseError
from django.test import override_settings

from managed_commands import listing
from managed_commands.testing.utils import run_command
from tests.processes import ProcessProject

NOTICE = (
    "Pending run_once commands: noop_once, needs_schema, once, needs_once\n"
    "  Run them in order with: python manage.py run_pending_commands\n"
)


@pytest.fixture
def fresh_project(project, tmp_path):
    """An empty database on the backend of ``project``, not migrated yet."""
    fresh = ProcessProject(project.backend, tmp_path).create(migrate=False)
    yield fresh
    fresh.drop()


@pytest.mark.processes
def test_first_migrate_of_a_new_database_ends_with_the_notice(fresh_project):
    partial = fresh_project.run("migrate", "contenttypes")  # no history table yet
    assert (partial.returncode, partial.stderr) == (0, "")
    assert "Pending" not in partial.stdout
    result = fresh_project.run("migrate")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.endswith("  Applying sessions.0001_initial... OK\n" + NOTICE)
    quiet = fresh_project.run("migrate", "-v0")
    assert (quiet.returncode, quiet.stdout) == (0, "")
    unmigrated = fresh_project.run("migrate", "managed_commands", "zero")
    assert (unmigrated.returncode, unmigrated.stderr) == (0, "")
    assert "Pending" not in unmigrated.stdout


@pytest.mark.processes
def test_silent_when_nothing_is_pending(project):
    assert project.run("run_pending_commands").returncode == 0
    result = project.run("migrate")
    assert (result.returncode, result.stdout) == (
        0,
        "Operations to perform:\n"
        "  Apply all migrations: admin, auth, batchmodels, contenttypes, managed_commands, "
        "sessions\n"
        "Running migrations:\n"
        "  No migrations to apply.\n",
    )


def notice(**kwargs):
    out = io.StringIO()
    listing.pending_after_migrate(verbosity=1, using="default", stdout=out, **kwargs)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_lists_what_is_pending_in_run_order():
    run_command("noop_once")
    assert notice() == (
        "Pending run_once commands: needs_schema, once, needs_once\n"
        "  Run them in order with: python manage.py run_pending_commands\n"
    )


@pytest.mark.django_db(transaction=True)
@override_settings(MANAGED_COMMANDS={"MIGRATE_NOTICE": False})
def test_can_be_turned_off():
    assert notice() == ""


@pytest.mark.django_db(transaction=True)
@override_settings(MANAGED_COMMANDS={"DATABASE": "elsewhere"})
def test_silent_for_a_database_without_the_history():
    assert notice() == ""


@pytest.mark.django_db(transaction=True)
def test_a_database_error_is_logged_never_raised(monkeypatch, caplog):
    def broken(using):
        raise DatabaseError("the server went away")

    monkeypatch.setattr(listing, "CommandExecutor", broken)
    with caplog.at_level(logging.WARNING, logger="managed_commands"):
        assert notice() == ""
    [record] = caplog.records
    assert record.getMessage() == "Could not list the pending managed commands after migrate"
    assert str(record.exc_info[1]) == "the server went away"
