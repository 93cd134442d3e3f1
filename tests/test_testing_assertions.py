"""The assertion helpers, and the history their failure messages show."""

from __future__ import annotations

import datetime

import pytest

from managed_commands.testing.assertions import (
    assert_failed,
    assert_history,
    assert_ran_once,
    assert_refused,
    assert_skipped,
    assert_succeeded,
    format_history,
    history,
)

pytestmark = pytest.mark.django_db

NOON = datetime.datetime(2025, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def test_format_history_is_a_table_oldest_first(command_history):
    command_history.failed("once", executed_at=NOON, duration=0.25)
    command_history.succeeded(
        "once", executed_at=NOON + datetime.timedelta(minutes=5), duration=12, forced=True
    )
    first, second = (str(row.pk) for row in history("once"))
    assert format_history("once") == (
        "History of 'once' (oldest first):\n"
        f"  {'#'.ljust(len(second))}  status              success  started"
        "              duration  error\n"
        f"  {first.ljust(len(second))}  failed              no       2025-03-01 12:00:00"
        "  0.250s    CommandError: it failed\n"
        f"  {second}  succeeded (forced)  yes      2025-03-01 12:05:00  12.000s"
    )


def test_format_history_of_a_command_that_never_ran():
    assert format_history("once") == "History of 'once': no runs recorded."


def test_assert_succeeded_returns_the_row(run_managed_command):
    row = assert_succeeded(run_managed_command("once"))
    assert row.status == "succeeded"


def test_assert_succeeded_shows_output_and_history_on_failure(run_managed_command):
    result = run_managed_command("fail")
    with pytest.raises(AssertionError) as raised:
        assert_succeeded(result)
    pk = result.execution.pk
    message = str(raised.value)
    assert message.startswith(
        f"Running 'fail': expected the run to succeed; got exit code 1, run #{pk} failed.\n"
        "stdout:\n  | fail: about to fail\n"
        "stderr:\n  | CommandError: it went wrong\n"
        "History of 'fail' (oldest first):\n"
    )
    assert f"  {pk}  failed  no       " in message and "CommandError: it went wrong" in message


def test_assert_failed(run_managed_command):
    row = assert_failed(run_managed_command("fail", code=2), "CommandError: it went wrong")
    assert row.error_message == "CommandError: it went wrong"
    with pytest.raises(AssertionError, match="expected its error message to contain 'KeyError'"):
        assert_failed(run_managed_command("fail"), "KeyError")
    with pytest.raises(AssertionError, match="expected the run to be recorded as failed"):
        assert_failed(run_managed_command("noop_managed"))


def test_assert_skipped(run_managed_command, command_history):
    with pytest.raises(AssertionError) as raised:
        assert_skipped(run_managed_command("once"))
    assert str(raised.value).startswith(
        "Running 'once': expected the run to be skipped as already done; got exit code 0, run #"
    )
    assert_skipped(run_managed_command("once"))


def test_assert_refused_names_exactly_the_missing_requirements(run_managed_command):
    result = run_managed_command("needs_once")
    assert_refused(result, missing=["once", "noop_once"])
    with pytest.raises(AssertionError) as raised:
        assert_refused(result, missing=["once"])
    assert str(raised.value).startswith(
        "Running 'needs_once': expected the refusal to name exactly ['once']: "
        "not named [], named but not expected ['noop_once']; got exit code 1, no run recorded.\n"
        "stdout: (empty)\n"
        "stderr:\n  | RequirementNotMet: Cannot run 'needs_once': it requires 'once', 'noop_once', "
    )
    assert str(raised.value).endswith(
        "History of 'needs_once': no runs recorded.\n"
        "History of 'once': no runs recorded.\n"
        "History of 'noop_once': no runs recorded."
    )


def test_assert_refused_fails_when_the_command_ran(run_managed_command):
    with pytest.raises(AssertionError, match=r"expected the run to be refused for missing \['x'\]"):
        assert_refused(run_managed_command("noop_managed"), missing=["x"])


def test_assert_ran_once_counts_real_successes_only(run_managed_command, command_history):
    command_history.faked("noop_managed")
    with pytest.raises(AssertionError) as raised:
        assert_ran_once("noop_managed")
    assert str(raised.value).startswith(
        "Expected 'noop_managed' to have run successfully once, found 0 successful runs.\n"
        "History of 'noop_managed' (oldest first):\n"
    )
    run_managed_command("noop_managed")
    assert assert_ran_once("noop_managed").status == "succeeded"
    run_managed_command("noop_managed")
    with pytest.raises(AssertionError, match="found 2 successful runs"):
        assert_ran_once("noop_managed")


def test_assert_history(run_managed_command):
    with pytest.raises(RuntimeError):
        run_managed_command("once", fail=True)
    run_managed_command("once")
    run_managed_command("once")
    assert_history("once", ["failed", "succeeded"])
    with pytest.raises(AssertionError) as raised:
        assert_history("once", ["succeeded"])
    assert str(raised.value).startswith(
        "Expected the runs of 'once' to be ['succeeded'], found ['failed', 'succeeded'].\n"
        "History of 'once' (oldest first):\n"
    )
