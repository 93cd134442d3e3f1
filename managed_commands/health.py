"""Recurring commands, told where people look: alerts on the ``managed_commands``
logger, the ``command_late`` signal, a django-health-check plugin and a JSON view.

Nothing here runs on its own (no thread, no scheduler): a command turns late
when someone looks (``show_managed_commands``, the admin overview, the health
check, the view), and each late spell is logged once, by the process whose
conditional write records it (``ExecutionRecorder.claim_late_alert()``).

django-health-check is optional (``managed-commands[health]``): this module
imports it only when ``CommandsHealthCheck`` is asked for.
"""

from __future__ import annotations

import hmac
import logging
from functools import cache
from typing import TYPE_CHECKING, Any

from managed_commands import conf
from managed_commands.models import CommandExecution

if TYPE_CHECKING:  # apps.py imports this module in every process: the web side loads late
    from django.http import HttpRequest, JsonResponse

# And CommandsHealthCheck, made on first use (module __getattr__).
__all__ = ["alarms", "cadence_view"]

logger = logging.getLogger("managed_commands")

Status = CommandExecution.Status


def alarms() -> list[tuple[str | None, Any]]:
    """Every recurring command with an alarm, as ``(tenant schema or None, status)``,
    after alerting those that turned late.

    With django-tenants installed, every tenant's (and the public schema's when
    it holds a history); else the current scope's. One statement for the runs
    (per tenant), whatever the history.
    """
    from django.apps import apps

    from managed_commands.status import alert_late, readable_statuses

    if apps.is_installed("django_tenants"):
        from managed_commands.tenants import public_has_history, statuses_by_tenant

        tenants = statuses_by_tenant(include_public=public_has_history(), alert=True)
        return [(t.schema, s) for t in tenants for s in t.statuses if s.alarms]
    statuses = readable_statuses(brief=True)
    alert_late(statuses)
    return [(None, s) for s in statuses if s.alarms]


def _alarm_json(schema: str | None, status: Any) -> dict[str, Any]:
    run, success = status.last_run, status.last_success
    return {
        "name": status.command.name,
        "tenant": schema,
        "alarms": list(status.alarms),
        "text": status.alarm_text(),
        "late_since": status.late_since.isoformat() if status.late_since else None,
        "last_status": run.status if run else None,
        "last_run_at": run.executed_at.isoformat() if run else None,
        "last_success_at": success.executed_at.isoformat() if success else None,
    }


def _allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = conf.health_token()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token and given and hmac.compare_digest(token.encode(), given.encode()))


def cadence_view(request: HttpRequest) -> JsonResponse:
    """``{"ok": false, "alarms": [...]}``: the recurring commands late, failing or
    overrunning; 200 when none is, 503 when any is, 403 without a staff session
    or the ``HEALTH_TOKEN`` (``Authorization: Bearer <token>``)."""
    from django.http import JsonResponse
    from django.utils.cache import add_never_cache_headers

    if not _allowed(request):
        response = JsonResponse(
            {"detail": "Staff or MANAGED_COMMANDS['HEALTH_TOKEN'] only."}, status=403
        )
    else:
        found = alarms()
        body = {"ok": not found, "alarms": [_alarm_json(schema, s) for schema, s in found]}
        response = JsonResponse(body, status=503 if found else 200)
    add_never_cache_headers(response)
    return response


def describe(found: list[tuple[str | None, Any]]) -> str:
    """``2 recurring commands: hourly_sync [acme]: late since ...; nightly: failed at ...``."""
    lines = [
        f"{s.command.name}{f' [{schema}]' if schema is not None else ''}: {s.alarm_text()}"
        for schema, s in found
    ]
    return f"{len(lines)} recurring command{'s' if len(lines) != 1 else ''}: {'; '.join(lines)}"


@cache
def _health_check_class() -> type[Any]:
    # Imported here: django-health-check is optional, and a run never needs it.
    import dataclasses

    from asgiref.sync import sync_to_async
    from health_check.base import HealthCheck
    from health_check.exceptions import ServiceUnavailable

    @dataclasses.dataclass
    class CommandsHealthCheck(HealthCheck):  # type: ignore[misc]
        """Fails naming the late, failing and overrunning recurring commands (and tenants)."""

        async def run(self) -> None:
            # On the request's own thread and connection, as the ORM wants.
            found = await sync_to_async(alarms, thread_sensitive=True)()
            if found:
                raise ServiceUnavailable(describe(found))

    CommandsHealthCheck.__module__ = __name__
    CommandsHealthCheck.__qualname__ = "CommandsHealthCheck"
    return CommandsHealthCheck


def __getattr__(name: str) -> Any:
    # "managed_commands.health.CommandsHealthCheck" in HealthCheckView's checks.
    if name == "CommandsHealthCheck":
        return _health_check_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
