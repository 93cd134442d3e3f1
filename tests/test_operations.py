"""``RequireCommand`` in process: what it checks forwards, and what it leaves alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.state import ProjectState
from django.test import override_settings

from managed_commands.exceptions import RequirementNotMet
from managed_commands.executor import RequireCommand
from managed_commands.recorder import ExecutionRecorder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _phases_app():
    with override_settings(INSTALLED_APPS=["managed_commands", "tests.testapp", "tests.phasesapp"]):
        yield


REQUIRE = RequireCommand("backfill_slugs")


def forwards(operation: RequireCommand, alias: str = "default") -> None:
    editor = SimpleNamespace(connection=SimpleNamespace(alias=alias))
    operation.database_forwards("phasesapp", editor, ProjectState(), ProjectState())


def test_it_changes_neither_schema_nor_state_and_says_what_it_does():
    state = ProjectState()
    REQUIRE.state_forwards("phasesapp", state)
    assert state.models == {}
    assert REQUIRE.reduces_to_sql is False and REQUIRE.reversible is True
    assert REQUIRE.describe() == "Require that the managed command 'backfill_slugs' has run"
    assert REQUIRE.migration_name_fragment == "require_backfill_slugs"
    assert REQUIRE.deconstruct() == ("RequireCommand", ("backfill_slugs",), {})


def test_forwards_stops_while_the_command_has_not_run_then_passes_once_it_has():
    with pytest.raises(RequirementNotMet) as raised:
        forwards(REQUIRE)
    assert str(raised.value) == (
        "A migration of 'phasesapp' requires the managed command 'backfill_slugs', which has "
        "not run successfully yet, so migrate stopped. Run it first with 'python manage.py "
        "backfill_slugs' (or every pending pre_migrate command with 'python manage.py "
        "run_pending_commands --phase pre_migrate'), then migrate again."
    )
    ExecutionRecorder("default").record_faked("backfill_slugs", "")
    forwards(REQUIRE)


def test_a_failed_run_does_not_meet_it():
    ExecutionRecorder("default").record(
        command_name="backfill_slugs", scope="", status="failed", success=False, run_once=True
    )
    with pytest.raises(RequirementNotMet):
        forwards(REQUIRE)


def test_backwards_and_other_databases_check_nothing():
    REQUIRE.database_backwards("phasesapp", None, ProjectState(), ProjectState())
    forwards(REQUIRE, alias="history")


def test_an_unknown_command_is_named():
    with pytest.raises(RequirementNotMet) as raised:
        forwards(RequireCommand("backfill_slug"))
    assert str(raised.value) == (
        "A migration of 'phasesapp' requires the managed command 'backfill_slug', but no "
        "installed app has a managed command named 'backfill_slug'. Correct the name in "
        "RequireCommand()."
    )


def test_without_the_history_table_it_says_to_depend_on_managed_commands(monkeypatch):
    monkeypatch.setattr(connection.introspection, "table_names", lambda *args: [])
    with pytest.raises(RequirementNotMet) as raised:
        forwards(REQUIRE)
    assert str(raised.value) == (
        "A migration of 'phasesapp' requires the managed command 'backfill_slugs', but the "
        "history table 'managed_commands_commandexecution' does not exist yet on database "
        "'default', so no run of it can be found. Add ('managed_commands', "
        "'0001_initial') to the migration's dependencies, so that "
        "managed_commands is migrated first."
    )
