"""Interleavings forced inside a run, for the in-process tests (through monkeypatch)
and for real processes (tests/manage.py applies them when its environment asks)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs import claim


def beat_after_each_end(patch: Callable[[Any, str, Any], None] = setattr) -> dict[int, Any]:
    """Fire the heartbeat of each run right after its end is written, with the run
    taken as the heartbeat thread would have taken it just before the run ended.

    Returns the runs taken, by id; each forced beat is also said on stderr, so that
    a test of a real process knows the beat did fire.
    """
    taken: dict[int, Any] = {}
    register, finish = claim.heartbeat.register, ExecutionRecorder.finish

    def register_and_take(using, pk, *args):
        register(using, pk, *args)
        taken[pk] = claim.heartbeat._live[pk]

    def finish_then_beat(recorder, execution, lock_key, **fields):
        held = finish(recorder, execution, lock_key, **fields)
        if execution.pk in taken:
            claim.heartbeat._beat(execution.pk, taken[execution.pk])
            sys.stderr.write(f"[test] beat after the end of run #{execution.pk}\n")
        return held

    patch(claim.heartbeat, "register", register_and_take)
    patch(ExecutionRecorder, "finish", finish_then_beat)
    return taken
