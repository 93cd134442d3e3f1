"""What ``managed_commands`` exports, lazily, and what it keeps private."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys

import pytest

import managed_commands
from managed_commands import exceptions
from tests.processes import MANAGE

# Imported before django.setup(), as INSTALLED_APPS imports the package; then every
# name of __all__, as a project imports them.
IMPORTS = """
import sys
import managed_commands
from managed_commands import LockHeld
assert "managed_commands.models" not in sys.modules, "models imported before setup"
import django
django.setup()
from managed_commands import *
missing = [name for name in managed_commands.__all__ if name not in globals()]
unlisted = sorted(set(managed_commands.__all__) - set(dir(managed_commands)))
print(missing, unlisted)
"""


@pytest.mark.processes
@pytest.mark.django
def test_importing_the_package_loads_no_model_and_every_name_resolves_after_setup():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=MANAGE.parent.parent,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "[] []\n", "")


def test_dir_lists_every_exported_name_and_an_unknown_one_is_an_attribute_error():
    assert set(managed_commands.__all__) <= set(dir(managed_commands))
    with pytest.raises(AttributeError, match="has no attribute 'TrackedRun'"):
        managed_commands.TrackedRun  # noqa: B018


def test_the_names_for_type_checkers_are_those_imported_at_run_time():
    tree = ast.parse(inspect.getsource(managed_commands))
    [checking] = [node for node in tree.body if isinstance(node, ast.If)]
    for_checkers = {
        alias.name: node.module
        for node in checking.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    at_run_time = {
        name: f"managed_commands.{module}"
        for module, names in managed_commands._HOMES.items()
        for name in names
    }
    assert for_checkers == at_run_time
    assert sorted(for_checkers) == sorted(managed_commands.__all__)


def test_every_public_exception_is_a_command_error_with_its_exit_code():
    codes = {name: getattr(exceptions, name)("message").returncode for name in exceptions.__all__}
    assert codes == {
        "CircularRequirement": 1,
        "ClaimLost": 5,
        "DryRunRefused": 1,
        "InvalidDefinition": 1,
        "InvalidIteration": 1,
        "LockHeld": 3,
        "ManagedCommandError": 1,
        "NotMultiTenant": 1,
        "OutcomeUnknown": 8,
        "PendingCommandFailed": 1,
        "RequirementNotMet": 1,
        "RunStopped": 6,
        "StatementTimedOut": 1,
        "TimeLimitReached": 7,
        "TrackingUnavailable": 4,
        "UnknownRequirement": 1,
    }
    assert set(exceptions.__all__) <= set(managed_commands.__all__)


def test_the_exceptions_module_holds_no_control_flow():
    classes = {
        name: value
        for name, value in vars(exceptions).items()
        if isinstance(value, type) and value.__module__ == exceptions.__name__
    }
    assert sorted(classes) == sorted(exceptions.__all__)
    assert all(issubclass(cls, exceptions.ManagedCommandError) for cls in classes.values())
