"""command_statuses(): the one definition of pending, done and changed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from managed_commands.models import CommandExecution
from managed_commands.recorder import BRIEF_COLUMNS
from managed_commands.status import command_statuses
from managed_commands.testing.factories import CommandExecutionFactory
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db(transaction=True)


def statuses():
    return {status.command.name: status for status in command_statuses()}


def test_states_follow_run_once_and_successes():
    run_command("noop_once")
    with pytest.raises(RuntimeError):
        run_command("once", fail=True)
    found = statuses()
    assert found["noop_once"].state == "done"
    assert found["once"].state == "pending" and found["once"].failed_last
    assert found["needs_once"].state == "pending" and found["needs_once"].last_run is None
    assert found["slow"].state == "repeatable"


def test_the_status_read_sends_the_same_statements_however_long_the_history():
    def sent():
        with CaptureQueriesContext(connection) as captured:
            found = statuses()
        return len(captured), found

    before, _ = sent()
    for name in statuses():
        for trait in ("failed", "interrupted", None, "failed"):
            CommandExecutionFactory(
                command_name=name, run_once=True, **{trait: True} if trait else {}
            )
    after, found = sent()
    # The runs, then django_migrations for the commands requiring a migration.
    assert before == after == 2
    assert all(status.last_run.status == "failed" for status in found.values())


def test_a_failed_rerun_keeps_a_command_done():
    run_command("once")
    with pytest.raises(RuntimeError):
        run_command("once", rerun=True, fail=True)
    status = statuses()["once"]
    assert status.state == "done" and status.failed_last
    assert status.last_run.status == "failed" and status.last_success.status == "succeeded"


def test_a_running_row_is_running_not_failed():
    run_command("noop_once")
    CommandExecution.objects.update(
        status=CommandExecution.Status.RUNNING, success=False, finished_at=None
    )
    status = statuses()["noop_once"]
    assert status.running and not status.failed_last and status.state == "pending"
    assert status.shown_state == "running"


def test_a_running_row_marked_ended_has_an_unknown_outcome():
    run_command("noop_once")
    CommandExecution.objects.update(status=CommandExecution.Status.RUNNING, success=False)
    status = statuses()["noop_once"]
    assert status.outcome_unknown and not status.running and not status.failed_last
    assert (status.state, status.shown_state) == ("pending", "outcome_unknown")


def test_changed_compares_the_file_with_the_last_successful_run():
    run_command("noop_once")
    assert not statuses()["noop_once"].changed
    CommandExecution.objects.update(source_hash="0" * 64)
    assert statuses()["noop_once"].changed
    CommandExecution.objects.update(source_hash="")
    assert not statuses()["noop_once"].changed  # nothing recorded to compare with
    assert not statuses()["once"].changed  # never succeeded


def test_unapplied_migrations_are_listed_per_command(unapplied_initial):
    found = statuses()
    assert found["needs_schema"].unapplied_migrations == {"managed_commands.0001_initial"}
    assert found["once"].unapplied_migrations == frozenset()


def test_applied_migrations_are_not_listed():
    assert statuses()["needs_schema"].unapplied_migrations == frozenset()


def test_before_the_first_migrate_no_migration_is_applied(monkeypatch):
    # No django_migrations table: the read fails, the catalogue says why.
    monkeypatch.setattr(MigrationRecorder.Migration._meta, "db_table", "mc_no_such_table")
    assert statuses()["needs_schema"].unapplied_migrations == {"managed_commands.0001_initial"}


def test_a_brief_status_agrees_and_reads_less(unapplied_initial):
    run_command("noop_once")
    with pytest.raises(RuntimeError):
        run_command("once", fail=True)
    run_command("once")
    with pytest.raises(RuntimeError):
        run_command("once", rerun=True, fail=True)
    run_command("slow", seconds=0)
    CommandExecution.objects.filter(command_name="noop_once").update(source_hash="0" * 64)
    full = statuses()
    brief = {s.command.name: s for s in command_statuses(brief=True)}
    assert brief.keys() == full.keys()
    for name, status in brief.items():
        mine = (status.state, status.shown_state, status.changed, status.failed_last)
        theirs = full[name]
        assert mine == (theirs.state, theirs.shown_state, theirs.changed, theirs.failed_last)
        for run, other in (
            (status.last_run, theirs.last_run),
            (status.last_success, theirs.last_success),
        ):
            assert (run and run.pk) == (other and other.pk), name
            if run is not None:  # only the brief columns read; the rest loads on access
                loaded = {f.attname for f in CommandExecution._meta.concrete_fields}
                assert loaded - run.get_deferred_fields() == set(BRIEF_COLUMNS)
    assert full["once"].last_success.pk != full["once"].last_run.pk  # a failed rerun
    assert brief["noop_once"].changed
    # Unapplied migrations: read for the pending commands only.
    assert brief["needs_schema"].unapplied_migrations == {"managed_commands.0001_initial"}


def test_sorted_by_app_then_name_with_a_scope_of_their_own():
    run_command("noop_once")
    listed = command_statuses(scope="tenant-b")
    assert [s.command.name for s in listed] == sorted(s.command.name for s in listed)
    assert all(s.last_run is None for s in listed)


RENAMED = override_settings(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "managed_commands",
        "tests.testapp",
        "tests.renamesafter",
    ]
)


@RENAMED
def test_a_renamed_command_is_done_by_the_run_of_its_old_name():
    CommandExecutionFactory(command_name="fill_slugs", app_label="renamesbefore", run_once=True)
    status = statuses()["populate_slugs"]
    assert status.state == "done"
    assert status.last_run.command_name == status.last_success.command_name == "fill_slugs"
    # The rename itself changed the file: no "source changed" for the old name's run.
    assert not status.changed
    # What requires it can run, and it is skipped (nothing run, nothing recorded).
    run_command("after_populate")
    run_command("populate_slugs")
    assert list(CommandExecution.objects.values_list("command_name", flat=True).order_by("pk")) == [
        "fill_slugs",
        "after_populate",
    ]


@RENAMED
def test_the_newest_run_under_either_name_is_the_last_run():
    CommandExecutionFactory(command_name="fill_slugs", run_once=True)
    run_command("populate_slugs", rerun=True)
    status = statuses()["populate_slugs"]
    assert status.last_run.command_name == status.last_success.command_name == "populate_slugs"
