"""What a subclass may name freely, and a managed command in a project without the app."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management.base import BaseCommand

from managed_commands.base import ManagedBaseCommand
from tests.processes import MANAGE

# Its outcome depends on the Django version: it runs in every CI entry.
pytestmark = [pytest.mark.processes, pytest.mark.django]


def test_the_base_class_leaves_every_private_name_to_subclasses():
    own = {name for name in vars(ManagedBaseCommand) if not name.startswith("__")}
    assert own - set(vars(BaseCommand)) == {
        "run_once",
        "requires",
        "allow_concurrent",
        "sensitive_options",
        "lease_seconds",
        "resume",
        "supports_dry_run",
        "phase",
        "tags",
        "replaces",
        "dry_run",
        "statement_timeout",
        "lock_timeout",
        "time_limit",
        "expected_every",
        "expected_grace",
        "expected_duration_max",
        "recorded_run",
        "iterate",
        "iterate_batches",
    }
    assert [name for name in own if name.startswith("_")] == []


# The command lives in an app of its own, so the other tests' listings stay as they are.
WITH_HELPERS_APP = {"MC_TEST_EXTRA_APPS": "tests.helpersapp"}


def test_helpers_named_like_tracking_internals_run_and_are_tracked(project):
    result = project.run("own_helpers", "--count", "2", env=WITH_HELPERS_APP)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "own _check_kwargs\nown _claim\nown _run 0\nown _run 1\n"
        "own _send: own _outcome\nown _finish\n"
    )
    [row] = project.rows("own_helpers")
    assert (row["status"], row["success"], row["run_once"]) == ("succeeded", True, True)
    assert row["output"] == result.stdout and row["lock_key"] is None
    again = project.run("own_helpers", env=WITH_HELPERS_APP)
    assert again.returncode == 0 and again.stdout.startswith("Skipped 'own_helpers': ")
    assert len(project.rows("own_helpers")) == 1


# -- a project that lacks managed_commands in INSTALLED_APPS ---------------------
def _without_app(*argv: str, code: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings_not_installed"
    command = [sys.executable, "-c", code] if code else [sys.executable, str(MANAGE), *argv]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=MANAGE.parent.parent
    )


@pytest.mark.parametrize("setup", ["", "import django; django.setup(); "])
def test_importing_the_base_class_touches_no_model(setup):
    result = _without_app(code=f"{setup}import managed_commands.base")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_help_and_argument_errors_behave_as_for_any_command():
    managed, plain = _without_app("with_options", "--help"), _without_app("noop_plain", "--help")
    assert (managed.returncode, managed.stderr) == (0, "")
    assert managed.stdout.startswith("usage: manage.py with_options [-h] [--password PASSWORD]")
    assert plain.returncode == 0
    wrong = _without_app("with_options", "--count", "many")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.splitlines()[-1] == (
        "manage.py with_options: error: argument --count: invalid int value: 'many'"
    )


def test_running_it_exits_4_with_one_line_saying_what_to_do():
    result = _without_app("noop_managed")
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        "TrackingUnavailable: 'noop_managed' was not run: it is a managed command, but "
        "'managed_commands' is not in INSTALLED_APPS, so its run cannot be recorded. Add "
        "'managed_commands' to INSTALLED_APPS, then run "
        "'python manage.py migrate managed_commands'.\n"
    )
