"""The testing kit for batch loops: ``run_interrupted``, ``assert_resumed``, ``assert_cursor``."""

from __future__ import annotations

import pytest

from managed_commands.runs import batches
from managed_commands.testing.assertions import (
    assert_cursor,
    assert_history,
    assert_resumed,
    assert_succeeded,
)
from managed_commands.testing.utils import run_command, run_interrupted
from tests.batchmodels.models import Item


@pytest.fixture(autouse=True)
def batchapp(settings):
    """The commands of the batch-loop tests (``backfill``), installed for the test."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.batchapp"]


def seed(count):
    Item.objects.bulk_create(Item(number=n) for n in range(1, count + 1))
    return list(Item.objects.order_by("pk").values_list("pk", flat=True))


def processed():
    return list(Item.objects.order_by("pk").values_list("processed", flat=True))


def test_run_interrupted_stops_after_the_batches_asked_for(db):
    pks = seed(10)
    row = run_interrupted("backfill", batch_size=3, after_batches=2)
    assert (row.status, row.success, row.resumed_from_id) == ("interrupted", False, None)
    assert row.error_message == "Interrupted by SIGINT (KeyboardInterrupt)."
    assert row.cursor == {"main": {"columns": ["pk"], "after": [pks[5]], "count": 6, "done": False}}
    assert (row.tick_count, row.tick_total) == (6, 10)
    assert processed() == [1] * 6 + [0] * 4
    assert batches.interrupt_after is None  # set for the call only


def test_an_interrupted_run_then_a_normal_run_process_every_row_once(run_managed_command):
    seed(10)
    first = run_interrupted("backfill", batch_size=4, after_batches=1)
    assert_cursor(first, count=4, done=False)

    result = run_managed_command("backfill", batch_size=4)

    row = assert_resumed(result, from_=first)
    assert_cursor(row, count=10, done=True)
    assert result.stdout == "backfill: done\n"
    assert processed() == [1] * 10
    assert_history("backfill", ["interrupted", "succeeded"])


@pytest.mark.django_db(transaction=True)
def test_the_same_with_each_batch_really_committed():
    seed(7)
    first = run_interrupted("backfill", batch_size=2, after_batches=3)
    assert processed() == [1] * 6 + [0]
    second = run_interrupted("backfill", batch_size=2, after_batches=1)
    assert_resumed(second, from_=first)
    assert_cursor(second, count=7, done=True)
    assert_resumed(assert_succeeded(run_command("backfill")), from_=second)
    assert processed() == [1] * 7


def test_the_interruption_is_restored_when_the_run_fails(db):
    with pytest.raises(AssertionError):
        run_interrupted("backfill", after_batches=1, batch_size=0)
    assert batches.interrupt_after is None


def test_run_interrupted_fails_when_the_run_ends_first(db):
    seed(3)
    with pytest.raises(AssertionError) as raised:
        run_interrupted("backfill", batch_size=2, after_batches=5)
    message = str(raised.value)
    assert message.startswith(
        "Running 'backfill': expected the run to be interrupted after 5 batches of its "
        "iterate() loops; got exit code 0, run #"
    )
    assert " succeeded.\nstdout:\n  | backfill: done\n" in message
    assert processed() == [1] * 3


def test_run_interrupted_fails_when_nothing_ran(db, command_history):
    command_history.succeeded("backfill")
    with pytest.raises(AssertionError) as raised:
        run_interrupted("backfill")
    assert str(raised.value).startswith(
        "Running 'backfill': expected the run to be interrupted after 1 batch of its "
        "iterate() loops; got exit code 0, no run recorded.\nstdout:\n  | Skipped 'backfill': "
    )


@pytest.mark.parametrize("after", [0, -1, 1.5, True, None])
def test_run_interrupted_refuses_a_count_that_is_not_one_or_more(db, after):
    with pytest.raises(ValueError, match="after_batches must be a whole number >= 1"):
        run_interrupted("backfill", after_batches=after)


def test_assert_resumed_fails_for_a_run_that_started_over(run_managed_command):
    seed(4)
    first = run_interrupted("backfill", batch_size=2)
    result = run_managed_command("backfill", batch_size=2, restart=True)
    assert processed() == [2, 2, 1, 1]
    with pytest.raises(AssertionError) as raised:
        assert_resumed(result, from_=first)
    message = str(raised.value)
    assert message.startswith(
        f"Running 'backfill': expected the run to resume run #{first.pk}, but it resumed no run "
        "(only a run_once command, or one with resume = True, resumes, and not with --restart); "
        f"got exit code 0, run #{result.execution.pk} succeeded.\n"
    )
    assert "History of 'backfill' (oldest first):" in message


def test_assert_resumed_names_the_run_it_resumed(command_history):
    older = command_history.resumable("backfill", rows_done=1)
    newer = run_interrupted("backfill", after_batches=1)
    assert_resumed(newer, from_=older)
    with pytest.raises(AssertionError) as raised:
        assert_resumed(newer, from_=newer)
    assert str(raised.value).startswith(
        f"Run #{newer.pk} of 'backfill' (interrupted): expected the run to resume run "
        f"#{newer.pk}, but it resumed run #{older.pk}.\nHistory of 'backfill' (oldest first):\n"
    )
    assert f"  interrupted (resumes #{older.pk})  no " in str(raised.value)


def test_assert_cursor_checks_the_given_values_only(db):
    pks = seed(5)
    row = run_interrupted("backfill", batch_size=2)
    state = assert_cursor(row, after=(pks[1],))
    assert state == {"columns": ["pk"], "after": [pks[1]], "count": 2, "done": False}
    assert_cursor(row, "main", count=2, done=False)
    with pytest.raises(AssertionError) as raised:
        assert_cursor(row, count=3, after=None)
    assert str(raised.value).startswith(
        f"Run #{row.pk} of 'backfill' (interrupted): expected the cursor of its step 'main' to "
        f"have {{'after': None, 'count': 3}}, found {state}.\n"
    )
    with pytest.raises(AssertionError, match=r"save a cursor for its step 'other'; its cursor is"):
        assert_cursor(row, "other")
