"""Signals sent around every managed run.

Both are sent with ``sender`` = the command class and the keyword arguments
``command`` (the instance) and ``execution`` (the ``CommandExecution`` row).
``command_finished`` is sent after the row has been completed, whatever the
outcome; read ``execution.status``.

``command_late`` is sent once per late spell of a recurring command
(``expected_every``), by the process that first sees it late (see
``managed_commands.health``), with ``sender`` = the command's name and the
keyword arguments ``command`` (its ``Definition``), ``scope``, ``late_since``
(when it turned late) and ``last_success`` (its newest successful run, or None).
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["command_finished", "command_late", "command_started"]

command_started = Signal()
command_finished = Signal()
command_late = Signal()
