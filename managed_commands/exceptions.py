"""Errors raised by managed_commands.

Each is a ``CommandError``, so ``manage.py`` prints the message without a
traceback and exits with ``returncode``.
"""

from __future__ import annotations

from django.core.management.base import CommandError

__all__ = [
    "CircularRequirement",
    "ClaimLost",
    "DryRunRefused",
    "InvalidDefinition",
    "InvalidIteration",
    "LockHeld",
    "ManagedCommandError",
    "NotMultiTenant",
    "OutcomeUnknown",
    "PendingCommandFailed",
    "RequirementNotMet",
    "RunStopped",
    "StatementTimedOut",
    "TimeLimitReached",
    "TrackingUnavailable",
    "UnknownRequirement",
]


class ManagedCommandError(CommandError):
    """Base class of the errors a managed command raises before or around its run."""


class InvalidDefinition(ManagedCommandError):
    """A ManagedBaseCommand subclass declares an attribute of the wrong type."""


class RequirementNotMet(ManagedCommandError):
    """A command in ``requires`` has no successful run yet."""


class CircularRequirement(ManagedCommandError):
    """The ``requires`` of some commands form a cycle."""


class UnknownRequirement(ManagedCommandError):
    """A ``requires`` entry names no managed command or migration."""


class PendingCommandFailed(ManagedCommandError):
    """A command run by ``run_pending_commands`` failed, so the ones after it were not run."""

    def __init__(self, message: str, command_name: str = "", returncode: int = 1) -> None:
        super().__init__(message, returncode=returncode)
        #: The command that failed ("" when the failure names tenants instead).
        self.command_name = command_name


class LockHeld(ManagedCommandError):
    """Another run of the same command held the lock for longer than the wait allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=3)


class TrackingUnavailable(ManagedCommandError):
    """The history table cannot be reached, so the command is not run untracked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=4)


class ClaimLost(ManagedCommandError):
    """The run's claim was taken over while it ran, so its end was not recorded as its outcome."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=5)


class OutcomeUnknown(ManagedCommandError):
    """A run ended, but its end could not be recorded, so the command is not run again
    until someone checks its work (exit code 8): said by the run itself, and by a later
    start that finds its row."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=8)


class InvalidIteration(ManagedCommandError):
    """``iterate()`` was given a queryset or cursor it cannot page through safely."""


class DryRunRefused(ManagedCommandError):
    """A dry run met a statement its rollback could not undo (exit code 1)."""


class RunStopped(ManagedCommandError):
    """The run stopped between two batches because a stop was asked for; it can resume."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=6)


class StatementTimedOut(ManagedCommandError):
    """A statement of the run was stopped by the command's statement_timeout or lock_timeout."""


class TimeLimitReached(ManagedCommandError):
    """The run was stopped at its ``time_limit``; its row is ``interrupted`` with the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=7)


class NotMultiTenant(ManagedCommandError):
    """Runs across tenants were asked for, but django-tenants is not installed."""
