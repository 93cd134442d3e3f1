"""Batch loops (iterate / iterate_batches) through call_command(), in process.

The loops commit per batch, so these tests use transactional test databases.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from managed_commands.base import ManagedBaseCommand
from managed_commands.exceptions import TrackingUnavailable
from managed_commands.formatting import figures
from managed_commands.models import CommandExecution
from managed_commands.runs.capture import REDACTED
from managed_commands.testing.utils import run_command, run_interrupted
from tests.batchmodels.models import Item

pytestmark = pytest.mark.django_db(transaction=True)


def seed(count: int) -> None:
    Item.objects.bulk_create(Item(number=n, group=n % 3) for n in range(1, count + 1))


class _Loop(ManagedBaseCommand):
    run_once = True
    body: Callable[[ManagedBaseCommand], Any]

    def handle(self, *args: Any, **options: Any) -> None:
        self.body(self)


def Loop(body: Callable[[ManagedBaseCommand], Any], **attributes: Any) -> ManagedBaseCommand:
    """A command (class attributes ``attributes``) whose handle() is ``body(command)``."""
    command = type("Loop", (_Loop,), attributes)()
    command.body = body
    return command


def count_up(rows: list[Item]) -> None:
    Item.objects.filter(pk__in=[row.pk for row in rows]).update(processed=F("processed") + 1)


def processed() -> dict[int, int]:
    """How many items were processed how many times."""
    counts: dict[int, int] = {}
    for times in Item.objects.values_list("processed", flat=True):
        counts[times] = counts.get(times, 0) + 1
    return counts


def each_batch(size: int, **options: Any) -> Callable[[ManagedBaseCommand], None]:
    def body(command: ManagedBaseCommand) -> None:
        for rows in command.iterate_batches(Item.objects.all(), batch_size=size, **options):
            count_up(rows)

    return body


# -- paging -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cursor", [("pk",), ("number",), ("group", "pk"), ("-group", "number"), ("-pk",)]
)
def test_every_row_once_in_cursor_order(cursor):
    seed(95)
    seen: list[int] = []

    def body(command):
        rows = command.iterate(Item.objects.all(), batch_size=10, cursor=cursor)
        seen.extend(item.number for item in rows)

    result = run_command(Loop(body))
    assert result.exit_code == 0, result.stderr
    assert seen == list(Item.objects.order_by(*cursor).values_list("number", flat=True))
    assert sorted(seen) == list(range(1, 96))
    row = result.execution
    assert (row.tick_count, row.tick_total) == (95, 95)
    assert row.cursor["main"]["done"] is True
    assert row.at_least_once is False


def test_a_filtered_queryset_and_a_given_total():
    seed(30)
    done: list[int] = []

    def body(command):
        queryset = Item.objects.filter(group=1)
        done.extend(item.number for item in command.iterate(queryset, batch_size=4, total=10))

    row = run_command(Loop(body)).execution
    assert done == [n for n in range(1, 31) if n % 3 == 1]
    assert (row.tick_count, row.tick_total) == (10, 10)


@pytest.mark.parametrize(
    ("queryset", "options", "message"),
    [
        (lambda: Item.objects.all(), {"cursor": ("group",)}, "is not unique in batchmodels.Item"),
        (lambda: Item.objects.all(), {"cursor": ("nullable", "pk")}, "allows NULL"),
        (lambda: Item.objects.all(), {"cursor": ("nope",)}, "has no field 'nope'"),
        (lambda: Item.objects.all(), {"cursor": ()}, "needs at least one column"),
        (lambda: Item.objects.order_by("group"), {}, "ordered by group"),
        (lambda: Item.objects.all()[:10], {}, "without a slice"),
        (lambda: Item.objects.values("pk"), {}, "not values() or values_list()"),
        (lambda: Item.objects.all(), {"batch_size": 0}, "batch_size must be a whole number"),
    ],
)
def test_a_cursor_that_could_skip_or_repeat_rows_is_refused(queryset, options, message):
    seed(5)
    result = run_command(Loop(lambda command: list(command.iterate(queryset(), **options))))
    assert result.exit_code == 1
    assert message in str(result.error)
    assert result.execution.status == "failed"
    assert processed() == {0: 5}


def test_a_step_name_used_twice_is_refused():
    seed(3)

    def body(command):
        list(command.iterate(Item.objects.all()))
        list(command.iterate(Item.objects.all()))

    result = run_command(Loop(body))
    assert "step 'main' was already iterated in this run" in str(result.error)


def test_iterate_outside_a_tracked_run_says_how_to_run_it():
    with pytest.raises(TrackingUnavailable, match="works inside a tracked run only"):
        list(Loop(lambda c: None).iterate(Item.objects.all()))


# -- resume ------------------------------------------------------------------------
def test_an_interrupted_run_is_resumed_after_its_last_batch():
    seed(50)
    first = run_interrupted(Loop(each_batch(10)), after_batches=2)
    assert first.status == "interrupted"
    assert first.cursor["main"]["after"] == [Item.objects.get(number=20).pk]
    assert first.tick_count == 20 and processed() == {1: 20, 0: 30}
    second = run_command(Loop(each_batch(10))).execution
    assert second.status == "succeeded" and second.resumed_from_id == first.pk
    assert second.tick_count == 50
    assert processed() == {1: 50}


def test_restart_ignores_the_saved_cursor():
    seed(30)
    run_interrupted(Loop(each_batch(10)), after_batches=1)
    row = run_command(Loop(each_batch(10)), restart=True).execution
    assert row.resumed_from_id is None
    assert processed() == {2: 10, 1: 20}


def test_a_repeatable_command_resumes_only_when_it_says_so():
    seed(30)
    run_interrupted(Loop(each_batch(10), run_once=False), after_batches=1)
    assert run_command(Loop(each_batch(10), run_once=False)).execution.resumed_from_id is None
    assert processed() == {2: 10, 1: 20}
    Item.objects.update(processed=0)
    first = run_interrupted(Loop(each_batch(10), run_once=False, resume=True), after_batches=1)
    row = run_command(Loop(each_batch(10), run_once=False, resume=True)).execution
    assert row.resumed_from_id == first.pk
    assert processed() == {1: 30}


def fail_before_the_loop(command: ManagedBaseCommand) -> None:
    raise RuntimeError("a setup step that crashes before the loop")


def resume_after_failed_starts(failed_starts: int) -> int:
    """Interrupt a loop, fail ``failed_starts`` starts before their loop, then resume:
    return how many statements the resuming run sent to the history table."""
    seed(30)
    first = run_interrupted(Loop(each_batch(10)), after_batches=1)
    for _ in range(failed_starts):
        with pytest.raises(RuntimeError):
            run_command(Loop(fail_before_the_loop))
    with CaptureQueriesContext(connection) as queries:
        row = run_command(Loop(each_batch(10))).execution
    assert row.resumed_from_id == first.pk
    assert processed() == {1: 30}
    table = CommandExecution._meta.db_table
    return sum(table in query["sql"] for query in queries)


def test_a_saved_cursor_is_found_however_many_starts_failed_since():
    after_one = resume_after_failed_starts(1)
    CommandExecution.objects.all().delete()
    Item.objects.all().delete()
    # More failed starts than any look-back over the newest runs would read,
    # found with as many statements as after one.
    assert resume_after_failed_starts(25) == after_one


def test_pruning_never_deletes_the_cursor_the_next_start_resumes_from():
    seed(30)
    saved = run_interrupted(Loop(each_batch(10)), after_batches=1)
    with pytest.raises(RuntimeError):
        run_command(Loop(fail_before_the_loop))
    CommandExecution.objects.update(executed_at=timezone.now() - datetime.timedelta(days=60))
    pruned = run_command("prune_command_history", days=30)
    row = run_command(Loop(each_batch(10))).execution
    assert processed() == {1: 30}
    assert row.resumed_from_id == saved.pk
    assert pruned.stdout.startswith("Deleted 1 run older than 30 days")  # the failed start


def test_finished_steps_are_skipped_on_resume():
    seed(20)
    calls: list[str] = []

    def two_steps(command):
        for rows in command.iterate_batches(Item.objects.all(), batch_size=5, step="first"):
            calls.append("first")
            count_up(rows)
        for rows in command.iterate_batches(Item.objects.all(), batch_size=5, step="second"):
            calls.append("second")
            count_up(rows)

    # "first": 4 batches and the empty page that ends it; then 1 batch of "second".
    first = run_interrupted(Loop(two_steps), after_batches=6)
    assert first.cursor["first"]["done"] and not first.cursor["second"]["done"]
    calls.clear()
    row = run_command(Loop(two_steps)).execution
    assert calls == ["second"] * 3
    assert row.resumed_from_id == first.pk
    assert processed() == {2: 20}


def test_a_changed_cursor_cannot_resume_and_says_restart():
    seed(20)
    run_interrupted(Loop(each_batch(5)), after_batches=1)
    result = run_command(Loop(each_batch(5, cursor=("number",))))
    assert result.exit_code == 1
    assert "Run the command with --restart" in str(result.error)


def test_leaving_the_loop_early_rolls_the_batch_in_progress_back():
    seed(20)

    def stop_midway(command):
        for item in command.iterate(Item.objects.all(), batch_size=5):
            Item.objects.filter(pk=item.pk).update(processed=1)
            if item.number == 7:
                break

    row = run_command(Loop(stop_midway)).execution
    assert row.status == "succeeded"
    assert processed() == {1: 5, 0: 15}  # items 6 and 7 were rolled back with their batch
    assert row.cursor["main"]["count"] == 5


# -- progress, throttle, stop ------------------------------------------------------------
def test_the_history_is_written_once_per_batch_never_per_item():
    seed(100)
    with CaptureQueriesContext(connection) as queries:
        result = run_command(Loop(each_batch(25)))
    assert result.exit_code == 0
    table = CommandExecution._meta.db_table
    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and table in q["sql"]]
    # Four batches, the empty page that finds the end, then the run's own end.
    assert len(writes) == 4 + 1 + 1
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1


@pytest.mark.parametrize("rows_leave", [True, False], ids=["rows-leave-the-filter", "plain"])
def test_progress_after_a_resume_counts_the_whole_loop(rows_leave):
    seed(50)

    def body(command):
        # As the README's filter(slug=""): a processed row no longer matches.
        rows = Item.objects.filter(processed=0) if rows_leave else Item.objects.all()
        for batch in command.iterate_batches(rows, batch_size=10):
            count_up(batch)

    first = run_interrupted(Loop(body), after_batches=2)
    assert (first.tick_count, first.tick_total) == (20, 50)
    resumed = run_interrupted(Loop(body), after_batches=1)
    assert resumed.resumed_from_id == first.pk
    # The 20 rows done before and the 30 left make the total; 20 are still left,
    # at the rate of this run's own rows.
    progress = figures(resumed.tick_count, resumed.tick_total, resumed.tick_rate)
    assert progress is not None and (progress["count"], progress["total"]) == (30, 50)
    assert progress["percent"] == 60
    assert progress["eta_seconds"] == round(20 / resumed.tick_rate)
    last = run_command(Loop(body)).execution
    assert (last.tick_count, last.tick_total) == (50, 50)
    assert processed() == {1: 50}


def test_the_throttle_waits_between_batches_and_the_time_is_recorded():
    seed(30)
    answers = iter([True, True, False, False, False])
    asked: list[int] = []

    def throttle():
        asked.append(Item.objects.filter(processed=1).count())
        return next(answers)

    row = run_command(Loop(each_batch(10, throttle=throttle, backoff=0.1))).execution
    # Between batches only (the last one finds the end), never before the first.
    assert asked == [10, 10, 10, 20, 30]
    assert row.throttled_seconds >= 0.2
    assert processed() == {1: 30}


def test_a_running_run_shows_the_end_of_its_output_so_far_masked():
    seed(30)
    shown: list[tuple[str, str]] = []

    def body(command):
        for rows in command.iterate_batches(Item.objects.all(), batch_size=10):
            count_up(rows)
            command.stdout.write(f"batch up to {rows[-1].number}, token s3cret-value")
            command.stderr.write(f"warning {rows[-1].number}")
            # What another process reads of this run: the row as the last batch left it.
            shown.append(
                CommandExecution.objects.filter(status="running").values_list("output", "stderr")[0]
            )

    command = Loop(body, sensitive_options=["token"], stealth_options=("token",))
    row = run_command(command, token="s3cret-value").execution
    assert shown[0] == ("", "")
    assert shown[1] == (f"batch up to 10, token {REDACTED}\n", "warning 10\n")
    assert shown[2][0].endswith(f"batch up to 20, token {REDACTED}\n")
    assert all("s3cret" not in text for texts in shown for text in texts)
    assert row.output.count("batch up to") == 3


def test_a_stop_request_ends_the_run_interrupted_after_its_batch():
    seed(30)
    stopped_at: list[int] = []

    def body(command):
        for rows in command.iterate_batches(Item.objects.all(), batch_size=10):
            count_up(rows)
            if not stopped_at:
                CommandExecution.objects.filter(status="running").update(
                    stop_requested_at="2026-01-01T00:00:00Z"
                )
                stopped_at.append(rows[-1].number)

    result = run_command(Loop(body))
    assert result.exit_code == 6
    assert "stopped as asked" in result.stderr
    row = result.execution
    assert row.status == "interrupted" and row.error_message.startswith("Stopped on request")
    assert processed() == {1: 10, 0: 20} and row.tick_count == 10
    again = run_command(Loop(each_batch(10))).execution
    assert again.resumed_from_id == row.pk and processed() == {1: 30}


def test_a_run_whose_claim_was_taken_over_stops_at_its_next_batch():
    seed(30)

    def take_over() -> bool:
        # Between batches, as another process would after this run's lease ran out.
        CommandExecution.objects.filter(status="running").update(
            lock_key="taken-over", status="abandoned"
        )
        return False

    result = run_command(Loop(each_batch(10, throttle=take_over)))
    assert result.exit_code == 5
    assert "ClaimLost" in result.stderr
    # The first batch committed with its cursor; the second was rolled back.
    assert processed() == {1: 10, 0: 20}
    row = result.execution
    assert row.status == "abandoned" and row.cursor["main"]["count"] == 10
