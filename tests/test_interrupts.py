"""The run's signal guard: SIGTERM/SIGINT as exceptions, and a stop asked from another thread."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from managed_commands.runs.limits import InterruptGuard, StopOnTakeover


def test_a_stop_from_another_thread_raises_its_reason_in_the_run():
    before = signal.getsignal(signal.SIGTERM)
    guard = InterruptGuard()
    reason = StopOnTakeover()
    with pytest.raises(StopOnTakeover) as raised, guard:
        threading.Thread(target=guard.stop, args=(reason,)).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # interrupted long before
            time.sleep(0.05)
    assert raised.value is reason
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_stop_once_the_run_is_ending_changes_nothing():
    guard = InterruptGuard()
    with guard:
        guard.ending()
        assert guard.stop(StopOnTakeover()) is False


def test_a_stop_is_refused_where_the_run_cannot_be_interrupted():
    results = []
    guard = InterruptGuard()

    def in_a_worker_thread():
        with guard:  # no handlers outside the main thread
            results.append(guard.stop(StopOnTakeover()))

    worker = threading.Thread(target=in_a_worker_thread)
    worker.start()
    worker.join()
    assert results == [False]
