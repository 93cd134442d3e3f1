"""Signals sent around every managed run, and the alerts logged for the runs that end badly.

Both are sent with ``sender`` = the command class and the keyword arguments
``command`` (the instance) and ``execution`` (the ``CommandExecution`` row).
``command_finished`` is sent after the row has been completed, whatever the
outcome; read ``execution.status``.

``command_late`` is sent once per late spell of a recurring command
(``expected_every``), by the process that first sees it late (see
``status.alert_late()``), with ``sender`` = the command's name and the
keyword arguments ``command`` (its ``Definition``), ``scope``, ``late_since``
(when it turned late) and ``last_success`` (its newest successful run, or None).
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

from managed_commands.models import CommandExecution

__all__ = ["command_finished", "command_late", "command_started"]

#: Where the alerts go: a project routes ``managed_commands`` (or this child) to its
#: handlers (``AdminEmailHandler``, Sentry, ...). Without one, nothing is printed:
#: the NullHandler keeps Python's last-resort handler from repeating a failure on
#: the stderr of the command that already reported it.
alerts = logging.getLogger("managed_commands.alerts")
alerts.addHandler(logging.NullHandler())
Status = CommandExecution.Status

command_started = Signal()
command_finished = Signal()
command_late = Signal()

#: Lines of output (then of error output) an alert quotes from the end of a run.
TAIL_LINES = 20
#: The ends of a run that are alerted (``command_finished``, or a takeover).
_ALERTED = (Status.FAILED, Status.INTERRUPTED, Status.ABANDONED)


def admin_url(run: CommandExecution) -> str | None:
    """The path of ``run``'s page in the admin; None when the admin does not show it."""
    from django.urls import reverse

    try:
        return reverse("admin:managed_commands_commandexecution_change", args=[run.pk])
    except Exception:  # noqa: BLE001 (no admin, no URLconf, a broken one: an alert never fails)
        return None


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def run_ended(run: CommandExecution, *, status: str | None = None, error: str = "") -> None:
    """Log a failed, interrupted or abandoned ``run`` at ERROR; others are not logged.

    Called once per run: by the ``command_finished`` receiver (``on_finished``)
    in the run's process, or by the process whose takeover closed it
    ``abandoned`` (its conditional write succeeded once).
    """
    status = status or run.status
    if status not in _ALERTED or run.dry_run:
        return
    where = f" [{run.scope}]" if run.scope else ""
    lines = [
        f"Run #{run.pk} of '{run.command_name}'{where} {status}: "
        f"{error or run.error_message or 'no error message'}"
    ]
    url = admin_url(run)
    if url:
        lines.append(f"Admin: {url}")
    # Deferred columns (output...) are left alone: reading them is a query per alert.
    loaded = run.get_deferred_fields()
    for field, label in (("output", "output"), ("stderr", "error output")):
        text = "" if field in loaded else _tail(getattr(run, field) or "")
        if text:
            lines.append(f"Last lines of {label}:\n{text}")
    alerts.error(
        "\n".join(lines),
        extra={"command_name": run.command_name, "run_id": run.pk, "scope": run.scope},
    )


def on_finished(sender: Any, *, execution: CommandExecution, **kwargs: Any) -> None:
    """``command_finished`` receiver: ``run_ended()`` for a run that did not succeed.

    A run back after its claim was taken over ends ``abandoned``: the takeover
    logged it already.
    """
    if execution.status in (Status.FAILED, Status.INTERRUPTED):
        run_ended(execution)
