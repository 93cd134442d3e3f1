"""Tracked, run-once and ordered Django management commands.

The public API is importable from here (``from managed_commands import
ManagedBaseCommand``); each name is imported on first use, so importing the
package, as ``INSTALLED_APPS`` does before the app registry is ready, loads no
models. ``managed_commands.utils`` keeps django-managed-commands' manual API
under its own names, and ``managed_commands.testing`` holds the testing kit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loads no model (only Django's CommandError): its names are listed once, there.
from managed_commands import exceptions as _exceptions

if TYPE_CHECKING:
    from managed_commands.base import ManagedBaseCommand
    from managed_commands.exceptions import (
        CircularRequirement,
        ClaimLost,
        DryRunRefused,
        InvalidDefinition,
        InvalidIteration,
        LockHeld,
        ManagedCommandError,
        NotMultiTenant,
        OutcomeUnknown,
        PendingCommandFailed,
        RequirementNotMet,
        RunStopped,
        StatementTimedOut,
        TimeLimitReached,
        TrackingUnavailable,
        UnknownRequirement,
    )
    from managed_commands.executor import RequireCommand
    from managed_commands.models import CommandExecution
    from managed_commands.origin import RELEASE_ENVIRONMENT_VARIABLE, started_by
    from managed_commands.signals import command_finished, command_late, command_started
    from managed_commands.status import (
        CommandState,
        CommandStatus,
        command_statuses,
        recover_gone,
        run_gone,
    )
    from managed_commands.tasks import (
        enqueue_again,
        enqueue_command,
        enqueue_pending,
        run_enqueued_command,
    )
    from managed_commands.tenants import TenantStatus, all_tenants, statuses_by_tenant

__version__ = "0.1.0"

__all__ = [
    "RELEASE_ENVIRONMENT_VARIABLE",
    "CircularRequirement",
    "ClaimLost",
    "CommandExecution",
    "CommandState",
    "CommandStatus",
    "DryRunRefused",
    "InvalidDefinition",
    "InvalidIteration",
    "LockHeld",
    "ManagedBaseCommand",
    "ManagedCommandError",
    "NotMultiTenant",
    "OutcomeUnknown",
    "PendingCommandFailed",
    "RequireCommand",
    "RequirementNotMet",
    "RunStopped",
    "StatementTimedOut",
    "TenantStatus",
    "TimeLimitReached",
    "TrackingUnavailable",
    "UnknownRequirement",
    "all_tenants",
    "command_finished",
    "command_late",
    "command_started",
    "command_statuses",
    "enqueue_again",
    "enqueue_command",
    "enqueue_pending",
    "recover_gone",
    "run_enqueued_command",
    "run_gone",
    "started_by",
    "statuses_by_tenant",
]

# The module each name of __all__ lives in (the imports above, for type checkers).
_HOMES = {
    "base": ["ManagedBaseCommand"],
    "exceptions": _exceptions.__all__,
    "models": ["CommandExecution"],
    "executor": ["RequireCommand"],
    "origin": ["RELEASE_ENVIRONMENT_VARIABLE", "started_by"],
    "signals": ["command_finished", "command_late", "command_started"],
    "status": [
        "CommandState",
        "CommandStatus",
        "command_statuses",
        "recover_gone",
        "run_gone",
    ],
    "tasks": ["enqueue_again", "enqueue_command", "enqueue_pending", "run_enqueued_command"],
    "tenants": ["TenantStatus", "all_tenants", "statuses_by_tenant"],
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a name of the public API from its module on first use."""
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME_OF[name]}"), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
