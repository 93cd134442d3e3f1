"""The manual API, compatible with django_managed_commands."""

from __future__ import annotations

import datetime

import pytest

from managed_commands.models import CommandExecution
from managed_commands.utils import get_command_history, record_command_execution, should_run_command

pytestmark = pytest.mark.django_db


def test_record_returns_a_finished_row():
    row = record_command_execution(
        "legacy_fix", parameters={"day": datetime.date(2026, 1, 2)}, output="ok", duration=2.5
    )
    row.refresh_from_db()
    assert (row.status, row.success, row.output, row.duration) == ("succeeded", True, "ok", 2.5)
    assert row.parameters == {"day": "2026-01-02"}
    assert (row.finished_at - row.executed_at).total_seconds() == pytest.approx(2.5)


def test_failures_are_recorded_as_failed():
    row = record_command_execution("legacy_fix", success=False, error_message="boom")
    assert (row.status, row.success, row.error_message) == ("failed", False, "boom")


def test_should_run_is_false_only_after_a_run_once_success():
    assert should_run_command("legacy_fix")
    record_command_execution("legacy_fix", success=True, run_once=False)
    assert should_run_command("legacy_fix")
    record_command_execution("legacy_fix", success=True, run_once=True)
    assert not should_run_command("legacy_fix")
    record_command_execution("legacy_fix", success=False, run_once=True)
    assert should_run_command("legacy_fix")


def test_history_is_newest_first_and_limited():
    for n in range(12):
        record_command_execution("legacy_fix", output=str(n))
    history = list(get_command_history("legacy_fix"))
    assert len(history) == 10 and history[0].output == "11"
    assert [r.output for r in get_command_history("legacy_fix", limit=2)] == ["11", "10"]


def test_a_name_past_255_characters_is_recorded_clipped():
    name = "n" * 300
    row = record_command_execution(name, output="x\x00y")
    stored = CommandExecution.objects.get(pk=row.pk)
    assert len(stored.command_name) == 255 and stored.output == "x\ufffdy"
    assert should_run_command(name)
    assert list(get_command_history(name)) == [stored]
