"""Who started each run, as whom, from which release, with what metadata."""

from __future__ import annotations

import getpass
import json
import logging
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test.utils import override_settings

from managed_commands.executor import CommandExecutor
from managed_commands.models import CommandExecution
from managed_commands.origin import started_by
from managed_commands.signals import command_started
from managed_commands.testing.utils import run_command

pytestmark = pytest.mark.django_db


def run_metadata(command):
    return {"module": type(command).__module__, "ticket": "OPS-7"}


def broken_metadata(command):
    raise RuntimeError("the metadata hook is broken")


def test_a_run_from_code_records_call_command_the_os_user_and_no_release(monkeypatch):
    monkeypatch.delenv("MANAGED_COMMANDS_RELEASE", raising=False)
    row = run_command("noop_managed").execution
    assert row.origin == {
        "trigger": "call_command",
        "os_user": getpass.getuser(),
        "django_user": "",
        "release": "",
    }
    assert row.metadata is None


def test_the_release_comes_from_the_environment_unless_the_setting_names_it(monkeypatch):
    monkeypatch.setenv("MANAGED_COMMANDS_RELEASE", "from-env")
    assert run_command("noop_managed").execution.origin["release"] == "from-env"
    with override_settings(MANAGED_COMMANDS={"RELEASE": "v2.3.1"}):
        assert run_command("noop_managed").execution.origin["release"] == "v2.3.1"
    with override_settings(MANAGED_COMMANDS={"RELEASE": lambda: "abc1234"}):
        assert run_command("noop_managed").execution.origin["release"] == "abc1234"


def test_a_failing_release_or_metadata_hook_never_stops_the_run(caplog):
    def no_release():
        raise OSError("git is not installed")

    settings = {"RELEASE": no_release, "METADATA": "tests.test_origin.broken_metadata"}
    with override_settings(MANAGED_COMMANDS=settings), caplog.at_level(logging.WARNING):
        result = run_command("noop_managed")
    assert result.exit_code == 0
    assert result.execution.status == "succeeded"
    assert result.execution.origin["release"] == "" and result.execution.metadata is None
    messages = [record.getMessage() for record in caplog.records]
    assert "MANAGED_COMMANDS['RELEASE'] failed; the run records no release." in messages
    assert "MANAGED_COMMANDS['METADATA'] failed; the run records no metadata." in messages


@override_settings(MANAGED_COMMANDS={"METADATA": "tests.test_origin.run_metadata"})
def test_metadata_is_what_the_hook_returns_for_the_command():
    row = run_command("noop_managed").execution
    assert row.metadata == {
        "module": "tests.testapp.management.commands.noop_managed",
        "ticket": "OPS-7",
    }


def test_started_by_names_the_trigger_and_the_django_user_of_the_runs_inside():
    alice = get_user_model().objects.create_user("alice")
    with started_by("admin", alice):
        row = run_command("noop_managed").execution
    assert (row.origin["trigger"], row.origin["django_user"]) == ("admin", "alice")
    # Outside the block, back to a run from code, by no Django user.
    after = run_command("noop_managed").execution
    assert (after.origin["trigger"], after.origin["django_user"]) == ("call_command", "")


def test_a_run_started_by_another_run_records_call_command_for_the_same_user():
    def start_another(sender, command, execution, **kwargs):
        if execution.command_name == "noop_managed":
            call_command("noop_once")

    command_started.connect(start_another, weak=False)
    try:
        with started_by("admin", get_user_model()(username="bob")):
            run_command("noop_managed")
    finally:
        command_started.disconnect(start_another)
    outer = CommandExecution.objects.get(command_name="noop_managed")
    inner = CommandExecution.objects.get(command_name="noop_once")
    assert (outer.origin["trigger"], outer.origin["django_user"]) == ("admin", "bob")
    assert (inner.origin["trigger"], inner.origin["django_user"]) == ("call_command", "bob")


def test_the_deploy_step_records_itself_as_the_trigger_of_what_it_runs_and_fakes():
    executor = CommandExecutor()
    executor.run(executor.plan(["noop_once"]), stdout=StringIO())
    executor.fake(executor.plan(["once"]))
    ran = CommandExecution.objects.get(command_name="noop_once")
    faked = CommandExecution.objects.get(command_name="once")
    assert ran.origin["trigger"] == faked.origin["trigger"] == "run_pending_commands"
    assert faked.status == "faked"


@pytest.mark.processes
def test_manage_py_runs_record_manage_py_and_the_release_of_the_deploy(project):
    result = project.run("talk", env={"MANAGED_COMMANDS_RELEASE": "9f8e7d6"})
    assert result.returncode == 0, result.stderr
    [(origin,)] = project.sql(
        "SELECT origin FROM managed_commands_commandexecution WHERE command_name = 'talk'"
    )
    origin = json.loads(origin) if isinstance(origin, str) else origin
    assert origin == {
        "trigger": "manage.py",
        "os_user": getpass.getuser(),
        "django_user": "",
        "release": "9f8e7d6",
    }
    listed = project.run("show_managed_commands", "--json")
    [talk] = [entry for entry in json.loads(listed.stdout) if entry["name"] == "talk"]
    assert talk["last_origin"] == origin
