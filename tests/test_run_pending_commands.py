"""``manage.py run_pending_commands``, the deploy step, as a user runs it."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.processes

ORDER = ["noop_once", "needs_schema", "once", "needs_once"]


def masked(text):
    return re.sub(r"\(\d+\.\d\d s\)", "(<s>)", text)


def succeeded(project):
    return [row["command_name"] for row in project.rows() if row["status"] == "succeeded"]


def test_plan_prints_the_order_with_requirements_and_runs_nothing(project):
    result = project.run("run_pending_commands", "--plan")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "Would run 4 pending commands, in this order:\n"
        "  1. noop_once\n"
        "  2. needs_schema  (requires noop_once, managed_commands.0001_initial)\n"
        "  3. once\n"
        "  4. needs_once  (requires once, noop_once)\n"
    )
    assert project.rows() == []


def test_runs_every_pending_command_in_order_then_has_nothing_to_do(project):
    result = project.run("run_pending_commands")
    assert (result.returncode, result.stderr) == (0, "")
    assert masked(result.stdout) == (
        "Running 4 pending commands: noop_once, needs_schema, once, needs_once\n"
        "  Running noop_once...\n"
        "  noop_once: OK (<s>)\n"
        "  Running needs_schema...\n"
        "needs_schema: done\n"
        "  needs_schema: OK (<s>)\n"
        "  Running once...\n"
        "once: done\n"
        "  once: OK (<s>)\n"
        "  Running needs_once...\n"
        "needs_once: done\n"
        "  needs_once: OK (<s>)\n"
    )
    assert succeeded(project) == ORDER
    again = project.run("run_pending_commands")
    assert (again.returncode, again.stdout) == (0, "No pending run_once commands.\n")
    assert len(project.rows()) == 4


def test_stops_at_the_first_failure_with_exit_1_naming_what_is_left(project):
    result = project.run("run_pending_commands", env={"MC_TEST_ONCE_FAILS": "1"})
    assert result.returncode == 1
    assert masked(result.stdout).endswith("  Running once...\n")
    assert result.stderr.startswith("  once: FAILED\nTraceback (most recent call last):\n")
    assert result.stderr.endswith(
        "RuntimeError: once failed on purpose\n"
        "PendingCommandFailed: 'once' failed, so run_pending_commands stopped. "
        "Still pending: once, needs_once. Fix the failure, then run it again.\n"
    )
    assert succeeded(project) == ["noop_once", "needs_schema"]
    assert [row["status"] for row in project.rows("once")] == ["failed"]
    assert project.rows("needs_once") == []
    resumed = project.run("run_pending_commands")
    assert resumed.returncode == 0
    assert resumed.stdout.startswith("Running 2 pending commands: once, needs_once\n")


def test_fake_records_all_pending_as_done_without_running_them(project):
    result = project.run("run_pending_commands", "--fake")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "  Faked noop_once\n"
        "  Faked needs_schema\n"
        "  Faked once\n"
        "  Faked needs_once\n"
        "Faked 4 commands: recorded as done, not run.\n"
    )
    assert [(r["command_name"], r["status"], bool(r["success"])) for r in project.rows()] == [
        (name, "faked", True) for name in ORDER
    ]
    assert project.effect_lines() == []
    assert project.run("show_managed_commands", "--check").returncode == 0


def test_fake_named_commands_only(project):
    project.run("noop_once")
    result = project.run("run_pending_commands", "--fake", "once", "noop_once")
    assert result.stdout == (
        "Skipped 'noop_once': it is already done.\n"
        "  Faked once\n"
        "Faked 1 command: recorded as done, not run.\n"
    )
    assert project.run("run_pending_commands", "--plan").stdout == (
        "Would run 2 pending commands, in this order:\n"
        "  1. needs_once  (requires once, noop_once)\n"
        "  2. needs_schema  (requires noop_once, managed_commands.0001_initial)\n"
    )


def test_fake_plan_shows_what_would_be_faked(project):
    result = project.run("run_pending_commands", "--fake", "needs_once", "--plan")
    assert result.stdout == (
        "Would fake 1 pending command, in this order:\n"
        "  1. needs_once  (requires once, noop_once)\n"
    )
    assert project.rows() == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ghost", "CommandError: 'ghost' is not a managed command. Managed commands: "),
        ("slow", "CommandError: 'slow' is not a run_once command, so it is never pending"),
    ],
)
def test_fake_refuses_names_that_cannot_be_pending(project, name, message):
    result = project.run("run_pending_commands", "--fake", name)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert project.rows() == []


def test_two_deployers_at_once_run_each_command_exactly_once(project):
    results = project.race(2, "run_pending_commands")
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert sorted(succeeded(project)) == sorted(ORDER)
    assert len(project.rows()) == len(ORDER)
    assert sorted(line.split()[0] for line in project.effect_lines()) == [
        "needs_once",
        "needs_schema",
        "once",
    ]


def test_queue_name_and_backend_without_enqueue_are_refused(project):
    result = project.run("run_pending_commands", "--queue-name=nightly")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "--queue-name and --backend say where --enqueue sends the tasks; add --enqueue.\n"
    )
    assert project.rows() == []
