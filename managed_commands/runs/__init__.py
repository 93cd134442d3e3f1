"""The inside of one tracked run: its claim and lease, output capture, limits and
signals, batch loops and dry runs.

``managed_commands.base.ManagedBaseCommand`` is the public way in. The rest of the
package uses the names below, never the modules' other names.
"""

from __future__ import annotations

from managed_commands.runs.batches import ask_to_stop, interrupting_after
from managed_commands.runs.capture import (
    call_arguments,
    clean_text,
    clip_name,
    is_sensitive,
    to_json,
)
from managed_commands.runs.claim import last_heard, why_gone
from managed_commands.runs.limits import StopRun
from managed_commands.runs.run import TrackedRun, run_of, run_queued, take_queued

__all__ = [
    "StopRun",
    "TrackedRun",
    "ask_to_stop",
    "call_arguments",
    "clean_text",
    "clip_name",
    "interrupting_after",
    "is_sensitive",
    "last_heard",
    "run_of",
    "run_queued",
    "take_queued",
    "to_json",
    "why_gone",
]
