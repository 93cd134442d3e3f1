"""Signals sent around every managed run.

Both are sent with ``sender`` = the command class and the keyword arguments
``command`` (the instance) and ``execution`` (the ``CommandExecution`` row).
``command_finished`` is sent after the row has been completed, whatever the
outcome; read ``execution.status``.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["command_finished", "command_started"]

command_started = Signal()
command_finished = Signal()
