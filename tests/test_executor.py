"""The executor in process: what it plans, runs, fakes, and how it stops."""

from __future__ import annotations

import io

import pytest
from django.test import override_settings

from managed_commands.exceptions import (
    CircularRequirement,
    InvalidDefinition,
    PendingCommandFailed,
    RequirementNotMet,
)
from managed_commands.executor import CommandExecutor
from managed_commands.models import CommandExecution
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db(transaction=True)

TESTAPP_ORDER = ["noop_once", "needs_schema", "once", "needs_once"]


def names(plan):
    return [command.name for command in plan]


def test_plans_every_pending_run_once_command_after_what_it_requires():
    assert names(CommandExecutor().plan()) == TESTAPP_ORDER


def test_done_commands_leave_the_plan():
    run_command("noop_once")
    assert names(CommandExecutor().plan()) == ["needs_schema", "once", "needs_once"]


def test_named_targets_are_planned_in_order_whatever_order_they_are_given_in():
    assert names(CommandExecutor().plan(["needs_once", "once", "once"])) == ["once", "needs_once"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ghost", "'ghost' is not a managed command. Managed commands: "),
        ("slow", "'slow' is not a run_once command, so it is never pending or done."),
    ],
)
def test_a_target_that_cannot_be_pending_is_a_clear_error(target, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as raised:
        CommandExecutor().plan([target])
    assert str(raised.value).startswith(message)


def test_run_runs_each_in_order_as_a_tracked_run_and_reports_progress():
    events = []
    out = io.StringIO()
    executor = CommandExecutor()
    executor.run(
        executor.plan(),
        lambda event, command, **kw: events.append((event, command.name)),
        stdout=out,
    )
    assert events == [(event, name) for name in TESTAPP_ORDER for event in ("start", "success")]
    assert out.getvalue() == "needs_schema: done\nonce: done\nneeds_once: done\n"
    runs = CommandExecution.objects.order_by("pk")
    assert [(r.command_name, r.status) for r in runs] == [
        (name, "succeeded") for name in TESTAPP_ORDER
    ]
    assert CommandExecutor().plan() == []


def test_a_command_done_meanwhile_is_reported_as_skipped():
    executor = CommandExecutor()
    plan = executor.plan(["once"])
    run_command("once")  # another deployer got there first
    events = []
    executor.run(plan, lambda event, command, **kw: events.append((event, kw.get("execution"))))
    assert events == [("start", None), ("skipped", None)]
    assert CommandExecution.objects.filter(command_name="once").count() == 1


def test_the_first_failure_stops_the_run_and_names_what_is_left(monkeypatch):
    monkeypatch.setenv("MC_TEST_ONCE_FAILS", "1")
    events = []
    executor = CommandExecutor()
    with pytest.raises(PendingCommandFailed) as raised:
        executor.run(
            executor.plan(),
            lambda event, command, **kw: events.append((event, command.name, kw.get("error"))),
        )
    assert str(raised.value) == (
        "'once' failed, so run_pending_commands stopped. Still pending: once, needs_once. "
        "Fix the failure, then run it again."
    )
    assert raised.value.returncode == 1
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert events[-1] == ("failure", "once", raised.value.__cause__)
    assert names(CommandExecutor().plan()) == ["once", "needs_once"]


def test_an_unapplied_migration_requirement_stops_the_run_with_its_reason(unapplied_initial):
    executor = CommandExecutor()
    with pytest.raises(PendingCommandFailed) as raised:
        executor.run(executor.plan(["needs_schema", "noop_once"]))
    assert isinstance(raised.value.__cause__, RequirementNotMet)
    assert "managed_commands.0001_initial" in str(raised.value.__cause__)
    assert CommandExecution.objects.filter(command_name="needs_schema").count() == 0


def test_fake_records_done_without_running():
    executor = CommandExecutor()
    events = []
    executor.fake(executor.plan(["once"]), lambda event, command, **kw: events.append(event))
    [row] = CommandExecution.objects.all()
    assert (row.command_name, row.status, row.success, row.run_once) == (
        "once",
        "faked",
        True,
        True,
    )
    assert row.source_hash and row.duration == 0 and row.finished_at == row.executed_at
    assert events == ["faked"]
    assert "once" not in names(CommandExecutor().plan())
    assert run_command("once").stdout.startswith("Skipped 'once'")


@override_settings(INSTALLED_APPS=["managed_commands", "tests.testapp", "tests.brokenapp"])
def test_a_bad_definition_refuses_to_plan():
    with pytest.raises(InvalidDefinition) as raised:
        CommandExecutor()
    assert "bad_requires.Command.requires must be a list of command names" in str(raised.value)


def test_a_cycle_refuses_to_plan_anything():
    from managed_commands.loader import discover, requirement_graph

    executor = CommandExecutor()
    # A graph of its own: the executor's is the discovery's, shared by every executor.
    executor.graph = requirement_graph(discover().commands.values())
    executor.graph.add_dependency("noop_once", "needs_once")
    with pytest.raises(CircularRequirement) as raised:
        executor.plan(["once"])
    assert "needs_once -> noop_once -> needs_once" in str(raised.value)


@override_settings(INSTALLED_APPS=["managed_commands", "tests.brokenapp", "tests.testapp"])
def test_ties_follow_installed_apps_order():
    from managed_commands.loader import discover, requirement_graph

    commands = [c for c in discover().commands.values() if c.name in ("once", "cycle_a")]
    assert requirement_graph(commands).sort_keys == {"cycle_a": (1, "cycle_a"), "once": (2, "once")}
