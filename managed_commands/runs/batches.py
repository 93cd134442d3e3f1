"""The batch loops of one run: keyset pages, each committed together with the
run's saved cursor; progress, throttling and stop requests between batches.

When the rows and the history share a database, a batch's work and its cursor
commit in one transaction: a run killed at any moment resumes exactly after the
last batch that committed. On another database the cursor is written right
after the batch commits, and the run is marked ``at_least_once``: one batch
may be processed again.

Pages are read by keyset: ``Keyset`` orders by the queryset's unique, non-null key
and refuses a shape it cannot page through safely."""

from __future__ import annotations

import copy
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.db.models import Field, Model, Q, QuerySet
from django.utils import timezone

from managed_commands.exceptions import InvalidIteration
from managed_commands.formatting import describe
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import claim
from managed_commands.runs.dryrun import DryRun
from managed_commands.runs.limits import InterruptGuard, StopAsRequested, StopOnTakeover

__all__ = ["Keyset", "RunBatches"]
logger = logging.getLogger("managed_commands")
Status = CommandExecution.Status

#: Statuses of a run whose saved cursor the next run continues from.
RESUMABLE = (Status.INTERRUPTED, Status.FAILED, Status.ABANDONED)

#: Seconds between two rewrites of the progress line on a terminal.
_LINE_EVERY = 0.5

#: Set by the testing kit (``interrupting_after()``): interrupt the run after this many batches.
interrupt_after: int | None = None


@contextmanager
def interrupting_after(batches: int) -> Iterator[None]:
    """Within the block, a run is interrupted as Ctrl-C would once ``batches`` batches committed."""
    global interrupt_after
    previous, interrupt_after = interrupt_after, batches
    try:
        yield
    finally:
        interrupt_after = previous


class RunBatches:
    """The cursor and progress of one run's batch loops.

    Args:
        recorder: The recorder of the history database.
        execution: The run's row.
        lock_key: The claim the run holds (None for a command that may overlap).
        resumes: Whether to continue from the cursor of an unfinished earlier run.
        guard: The run's interrupt guard (a commit is never cut by a signal).
        verbosity: The run's verbosity (a progress line on a terminal from 1).
        dry_run: The dry run this run is, if it is one: each batch is rolled
            back, and nothing is written on the run's row (its transaction, like
            the batch's, would be rolled back; the heartbeat must not wait on it).
    """

    def __init__(
        self,
        recorder: ExecutionRecorder,
        execution: CommandExecution,
        lock_key: str | None,
        *,
        resumes: bool,
        guard: InterruptGuard,
        verbosity: int,
        dry_run: DryRun | None = None,
        output_so_far: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.recorder = recorder
        self.execution = execution
        self.lock_key = lock_key
        self.guard = guard
        self.verbosity = verbosity
        self.dry_run = dry_run
        self._output_so_far = output_so_far
        self._resumes = resumes
        self._steps: dict[str, dict[str, Any]] | None = None
        self._seen: set[str] = set()
        self._throttled = 0.0
        self._batches = 0  # batches with rows
        self._commits = 0  # and the empty pages that end loops
        self._stop_asked = False
        self._stop_file = claim.side_file(recorder.using, execution.pk, "stop")

    # -- the saved cursor ------------------------------------------------------
    def steps(self) -> dict[str, dict[str, Any]]:
        """Each step's saved state (``after``, ``count``, ``done``), read at the first loop."""
        if self._steps is None:
            self._steps = self._resume_from_earlier() if self._resumes else {}
        return self._steps

    def _resume_from_earlier(self) -> dict[str, dict[str, Any]]:
        """The cursor of the latest unfinished run that saved one (unless a success followed)."""
        execution = self.execution
        run = self.recorder.resume_point(execution)
        if run is None or run.success or not run.cursor or run.status not in RESUMABLE:
            return {}
        steps: dict[str, dict[str, Any]] = copy.deepcopy(run.cursor)
        # Written at once: this run now holds the position, should it end before its
        # first batch, and a later prune keeps it.
        if self.dry_run is None:
            self._write({"cursor": steps, "resumed_from_id": run.pk})
        execution.resumed_from_id = run.pk
        logger.info("Run #%s resumes run #%s from its saved cursor.", execution.pk, run.pk)
        return steps

    # -- one loop ----------------------------------------------------------------
    def batches(
        self,
        queryset: QuerySet[Any],
        *,
        batch_size: int,
        step: str | None,
        total: int | None,
        throttle: Callable[[], bool] | None,
        backoff: float,
        cursor: Sequence[str],
    ) -> Iterator[list[Any]]:
        """Yield the rows of ``queryset`` in batches, each inside its transaction."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidIteration(
                f"iterate(): batch_size must be a whole number >= 1, not {batch_size!r}."
            )
        name = step or "main"
        if name in self._seen:
            raise InvalidIteration(
                f"iterate(): step {name!r} was already iterated in this run. Give "
                f"each loop of handle() its own step=, so a resumed run can tell them apart."
            )
        keyset = Keyset(queryset, cursor)
        self._seen.add(name)
        state = self.steps().setdefault(
            name, {"columns": list(keyset.ordering), "after": None, "count": 0, "done": False}
        )
        if state.get("columns") != list(keyset.ordering):
            raise InvalidIteration(
                f"iterate(): step {name!r} resumes a cursor saved over the columns "
                f"{state.get('columns')}, but pages by {list(keyset.ordering)} now. Run the "
                f"command with --restart to start this loop over."
            )
        if state["done"]:
            logger.info("Step %r finished in an earlier run: skipped.", name)
            return
        using = queryset.db
        if using != self.recorder.using and not self.execution.at_least_once:
            if self.dry_run is None:
                self._write({"at_least_once": True})
            self.execution.at_least_once = True
        if total is None:
            # The rows done by earlier runs and those after the saved position: one
            # basis with the count, also for a queryset whose rows leave it once
            # processed (filter(slug="")), which count() alone counts as remaining only.
            total = state["count"] + queryset.filter(keyset.after(state["after"])).count()
        progress = _Progress(state["count"], total, self._line_wanted())
        pages = queryset.order_by(*keyset.ordering)

        def page_after(position: list[Any] | None) -> list[Any]:
            return list(pages.filter(keyset.after(position))[:batch_size])

        try:
            while not state["done"]:
                if self._batches and throttle is not None:
                    self._wait_while(throttle, backoff)
                yield from self._batch(page_after, batch_size, keyset, state, progress, using)
                progress.show(state["count"])
                self._after_commit()
        finally:
            progress.close(state["count"])

    def _batch(
        self,
        page_after: Callable[[list[Any] | None], list[Any]],
        batch_size: int,
        keyset: Keyset,
        state: dict[str, Any],
        progress: _Progress,
        using: str,
    ) -> Iterator[list[Any]]:
        """One batch: its rows, then its cursor, committed together on one database
        (on two, the cursor right after the rows)."""
        same_database = using == self.recorder.using
        block = transaction.atomic(using=using)
        block.__enter__()
        try:
            rows = page_after(state["after"])
            if rows:
                yield rows
                state["after"] = keyset.position_of(rows[-1])
                state["count"] += len(rows)
            state["done"] = len(rows) < batch_size
            if same_database:
                self._checkpoint(progress, state)
        except BaseException as exc:
            with self.guard.deferred():
                block.__exit__(type(exc), exc, exc.__traceback__)
            raise
        if self.dry_run is not None:
            transaction.set_rollback(True, using=using)
            self.dry_run.batches += 1
        # A signal arriving during the commit is raised once it is complete.
        with self.guard.deferred():
            block.__exit__(None, None, None)
        if not same_database:
            self._checkpoint(progress, state)
        self._commits += 1
        if rows:
            self._batches += 1

    def _after_commit(self) -> None:
        if self._stop_asked:
            raise StopAsRequested(
                f"Stopped on request after {self._batches} batches of this run; its "
                f"cursor is saved, and the next start resumes from it."
            )
        # The testing kit's interruption counts every commit, the empty page that
        # finds the end too: a generated test interrupts a loop over no rows.
        if interrupt_after is not None and self._commits >= interrupt_after:
            raise KeyboardInterrupt

    def _wait_while(self, throttle: Callable[[], bool], backoff: float) -> None:
        while throttle():
            started = time.monotonic()
            time.sleep(backoff)
            self._throttled += time.monotonic() - started

    def _line_wanted(self) -> Any:
        stream = sys.__stderr__
        wanted = self.verbosity >= 1 and stream is not None and stream.isatty()
        return stream if wanted else None

    # -- writes on the run's row ------------------------------------------------
    def _checkpoint(self, progress: _Progress, state: dict[str, Any]) -> None:
        """Save the cursor and progress on the run's row; see whether a stop was asked."""
        values: dict[str, Any] = {
            "cursor": self.steps(),
            "tick_count": state["count"],
            "tick_total": progress.total,
            "tick_rate": progress.rate(state["count"]),
            "throttled_seconds": self._throttled,
        }
        if self._stop_file and claim.stop_file_asks(self._stop_file, self.execution.process_token):
            claim.remove_file(self._stop_file)
            values["stop_requested_at"] = timezone.now()
            self._stop_asked = True
        if self.dry_run is not None:
            self._poll_stop()
            return
        values.update(self._output_so_far())  # read (and masked) only for a real write
        if self.recorder.save_progress(self.execution.pk, self.lock_key, values):
            return
        # Either the claim was taken over, or a stop was asked for: tell which.
        if not self._write(values):
            raise StopOnTakeover()
        self._stop_asked = True

    def _poll_stop(self) -> None:
        """A dry run only reads whether its claim still holds and a stop was asked."""
        asked = list(self._runs().values_list("stop_requested_at", flat=True))
        if not asked:
            raise StopOnTakeover()
        if asked[0] is not None:
            self._stop_asked = True

    def _runs(self) -> QuerySet[CommandExecution]:
        """The run's own row, while it still holds its claim."""
        rows = self.recorder.executions.filter(pk=self.execution.pk)
        if self.lock_key is None:
            return rows.filter(status=Status.RUNNING)
        return rows.filter(lock_key=self.lock_key)

    def _write(self, values: dict[str, Any]) -> bool:
        return bool(self._runs().update(**values))


class _Progress:
    """The figures of one loop, and its line on a terminal."""

    def __init__(self, count: int, total: int, line: Any) -> None:
        self.total = total
        self._first = count
        self._started = time.monotonic()
        self._line = line
        self._shown = 0.0

    def rate(self, count: int) -> float | None:
        """Rows per second of this run alone: what the rows left will take."""
        elapsed = time.monotonic() - self._started
        return (count - self._first) / elapsed if elapsed > 0 else None

    def show(self, count: int) -> None:
        """Rewrite the terminal line, at most every ``_LINE_EVERY`` seconds."""
        now = time.monotonic()
        if self._line is None or now - self._shown < _LINE_EVERY:
            return
        self._shown = now
        self._write(count)

    def close(self, count: int) -> None:
        """End the terminal line with the loop's last figures."""
        if self._line is not None and self._shown:
            self._write(count)
            self._line.write("\n")
            self._line.flush()

    def _write(self, count: int) -> None:
        self._line.write(f"\r\x1b[K{describe(count, self.total, self.rate(count))}")
        self._line.flush()


def ask_to_stop(recorder: ExecutionRecorder, runs: Sequence[tuple[int, str]]) -> None:
    """Ask ``runs`` ((id, process token) of running runs) to stop after their batch.

    On SQLite the request is a file beside the database (see ``beatfile``);
    elsewhere it is ``stop_requested_at`` on the row.
    """
    by_file = False
    for pk, token in runs:
        path = claim.side_file(recorder.using, pk, "stop")
        if path is not None:
            claim.write_stop_file(path, token)
            by_file = True
    if not by_file:
        recorder.request_stop([pk for pk, _ in runs])


class Keyset:
    """The ordered, unique columns a batch loop pages by.

    Args:
        queryset: The rows to iterate over (model instances, not sliced, not
            ordered by anything else).
        cursor: Field names, ``"pk"`` for the primary key; a ``-`` prefix pages
            that column in descending order.
    """

    def __init__(self, queryset: QuerySet[Any], cursor: Sequence[str]) -> None:
        if isinstance(cursor, str):
            cursor = (cursor,)
        if not cursor:
            raise InvalidIteration("iterate(): cursor needs at least one column, such as ('pk',).")
        model = queryset.model
        _refuse_shape(queryset)
        self.names = tuple(name.lstrip("-") for name in cursor)
        self.descending = tuple(name.startswith("-") for name in cursor)
        self.fields = tuple(_field(model, name) for name in self.names)
        _refuse_nullable(model, self.names, self.fields)
        _refuse_non_unique(model, self.names, self.fields)
        self.ordering = tuple(
            f"-{name}" if down else name
            for name, down in zip(self.names, self.descending, strict=True)
        )

    def after(self, position: Sequence[Any] | None) -> Q:
        """The rows strictly after ``position`` (the cursor values of the last row done)."""
        if position is None:
            return Q()
        # (a, b) > (x, y)  ==  a > x OR (a = x AND b > y), one column at a time.
        condition = Q()
        equal = Q()
        for name, down, value in zip(self.names, self.descending, position, strict=True):
            beyond = Q(**{f"{name}__{'lt' if down else 'gt'}": value})
            condition |= equal & beyond
            equal &= Q(**{name: value})
        return condition

    def position_of(self, row: Model) -> list[Any]:
        """The cursor values of ``row``, as saved (JSON) with the run."""
        return [
            field.value_to_string(row) if _stored_as_text(field) else getattr(row, field.attname)
            for field in self.fields
        ]


def _stored_as_text(field: Field[Any, Any]) -> bool:
    # Dates, times, UUIDs and decimals round-trip through JSON as the text the
    # field itself writes and reads back, with no precision lost on the way.
    return field.get_internal_type() in {
        "DateField",
        "DateTimeField",
        "TimeField",
        "UUIDField",
        "DecimalField",
        "DurationField",
    }


def _refuse_shape(queryset: QuerySet[Any]) -> None:
    query = queryset.query
    if query.is_sliced:
        raise InvalidIteration(
            "iterate() pages the queryset itself: pass it without a slice ([:n]) and use "
            "batch_size= for the size of each batch."
        )
    if getattr(queryset, "_iterable_class", None).__name__ != "ModelIterable":  # type: ignore[union-attr]
        raise InvalidIteration(
            "iterate() needs a queryset of model instances, not values() or values_list(): "
            "the cursor is read from each row."
        )
    if query.order_by:
        raise InvalidIteration(
            f"iterate() orders the rows by its cursor, but this queryset is ordered by "
            f"{', '.join(map(str, query.order_by))}. Drop the order_by(), or page by those "
            f"columns with cursor=(...) ending in a unique one, such as 'pk'."
        )
    if query.distinct_fields:
        raise InvalidIteration("iterate() cannot page a queryset with distinct(*fields).")


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    meta = model._meta
    try:
        field = meta.pk if name == "pk" else meta.get_field(name)
    except FieldDoesNotExist:
        raise InvalidIteration(
            f"iterate(): {meta.label} has no field '{name}' to use as a cursor column."
        ) from None
    if not isinstance(field, Field) or not field.concrete or field.many_to_many:
        raise InvalidIteration(
            f"iterate(): '{name}' of {meta.label} is not a column of its table and cannot "
            f"be a cursor column."
        )
    assert field is not None
    return field


def _refuse_nullable(
    model: type[Model], names: tuple[str, ...], fields: tuple[Field[Any, Any], ...]
) -> None:
    for name, field in zip(names, fields, strict=True):
        if field.null:
            raise InvalidIteration(
                f"iterate(): cursor column '{name}' of {model._meta.label} allows NULL, and "
                f"rows with NULL there would be skipped. Page by columns that are never NULL."
            )


def _refuse_non_unique(
    model: type[Model], names: tuple[str, ...], fields: tuple[Field[Any, Any], ...]
) -> None:
    if any(field.primary_key or field.unique for field in fields):
        return
    columns = {field.name for field in fields}
    meta = model._meta
    together = [set(group) for group in meta.unique_together]
    together += [
        set(constraint.fields) for constraint in meta.total_unique_constraints if constraint.fields
    ]
    if any(group <= columns for group in together):
        return
    raise InvalidIteration(
        f"iterate(): the cursor {tuple(names)} is not unique in {meta.label}, so rows that "
        f"share its values at the edge of a batch would be skipped or repeated. Add a "
        f"unique column at its end, such as cursor=({', '.join(map(repr, names))}, 'pk')."
    )
