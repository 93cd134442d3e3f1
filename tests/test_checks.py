"""System checks of the managed commands' definitions and requires."""

from __future__ import annotations

import pytest
from django.test import override_settings

from managed_commands import checks

BROKEN = override_settings(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "managed_commands",
        "tests.testapp",
        "tests.brokenapp",
    ]
)
WHERE = "tests.brokenapp.management.commands"


def found():
    return [(m.id, m.obj, m.msg, m.hint) for m in checks.check_commands()]


def test_the_test_project_passes():
    assert checks.check_commands() == []


@BROKEN
def test_every_mistake_is_reported_with_its_id_and_hint():
    assert [(id_, obj) for id_, obj, _, _ in found()] == [
        ("managed_commands.W001", "import_error"),
        ("managed_commands.E002", "bad_requires"),
        ("managed_commands.E002", "requires_itself"),
        ("managed_commands.E004", "requires_plain"),
        ("managed_commands.E004", "requires_plain"),
        ("managed_commands.E003", "requires_typo"),
        ("managed_commands.E005", "cycle_a"),
        ("managed_commands.E006", "needs_migration"),
        ("managed_commands.E006", "needs_migration"),
    ]


@BROKEN
def test_definition_problems_come_from_the_definition():
    messages = {(obj, msg) for id_, obj, msg, _ in found() if id_ == "managed_commands.E002"}
    assert messages == {
        (
            "bad_requires",
            f"{WHERE}.bad_requires.Command.requires must be a list of command names, "
            "for example requires = ['once'], not the string 'once'.",
        ),
        (
            "requires_itself",
            f"{WHERE}.requires_itself.Command.requires names the command itself "
            "('requires_itself').",
        ),
    }


@BROKEN
def test_unknown_requirement_suggests_the_closest_name():
    [(msg, hint)] = [(m, h) for i, _, m, h in found() if i == "managed_commands.E003"]
    assert (
        msg == "'requires_typo' requires 'noop_onse', which is not a command of any installed app."
    )
    assert hint == "Did you mean 'noop_once'?"


@BROKEN
def test_unmanaged_requirements_are_named():
    assert [m for i, _, m, _ in found() if i == "managed_commands.E004"] == [
        f"'requires_plain' requires '{name}', which is not a managed command: its runs are "
        "not recorded, so this requirement could never be met."
        for name in ("noop_plain", "migrate")
    ]


@BROKEN
def test_a_cycle_is_one_error_with_its_path():
    [(msg, hint)] = [(m, h) for i, _, m, h in found() if i == "managed_commands.E005"]
    assert msg == (
        "These commands require each other in a cycle (each requires the next): "
        "cycle_a -> cycle_b -> cycle_c -> cycle_a."
    )
    assert hint == "Remove one requirement of the cycle: no order could run them all."


@BROKEN
def test_unknown_migrations_say_why():
    assert [m for i, _, m, _ in found() if i == "managed_commands.E006"] == [
        "'needs_migration' requires the migration 'testapp.9999_never', "
        "but app 'testapp' has no migration named '9999_never'.",
        "'needs_migration' requires the migration 'nosuchapp.0001_initial', "
        "but no installed app has the label 'nosuchapp'.",
    ]


@BROKEN
def test_an_unimportable_command_is_a_warning():
    [(msg, hint)] = [(m, h) for i, _, m, h in found() if i == "managed_commands.W001"]
    assert msg == (
        "The command module of 'import_error' cannot be imported (ModuleNotFoundError: "
        "No module named 'a_module_that_is_not_installed'), so it is not checked."
    )
    assert hint == (
        "Fix the error raised by importing it; 'python manage.py import_error' shows it."
    )


@override_settings(MIGRATION_MODULES={"testapp": None})
def test_an_app_without_migrations_has_none_to_require(monkeypatch):
    from managed_commands.loader import discover

    command = discover().commands["needs_schema"].command_class
    monkeypatch.setattr(command, "requires", ["testapp.0001_initial"])
    [message] = checks.check_commands()
    assert message.msg == (
        "'needs_schema' requires the migration 'testapp.0001_initial', "
        "but app 'testapp' has no migration named '0001_initial'."
    )


@pytest.mark.processes
def test_manage_py_check_fails_on_a_cycle_or_unknown_name(project):
    assert project.run("check").stdout == "System check identified no issues (0 silenced).\n"
    result = project.run("check", env={"MC_TEST_EXTRA_APPS": "tests.brokenapp"})
    assert result.returncode == 1
    assert "cycle_a: (managed_commands.E005) These commands require each other" in result.stderr
    assert "requires_typo: (managed_commands.E003) 'requires_typo' requires 'noop_onse'" in (
        result.stderr
    )
    assert result.stderr.endswith("System check identified 9 issues (0 silenced).\n")


def settings_messages():
    return [(m.id, m.msg) for m in checks.check_settings()]


def test_default_settings_pass():
    assert checks.check_settings() == []


@override_settings(MANAGED_COMMANDS=["WAIT_TIMEOUT"])
def test_settings_not_a_dict():
    assert settings_messages() == [
        ("managed_commands.E001", "MANAGED_COMMANDS must be a dict, not list.")
    ]


@override_settings(
    MANAGED_COMMANDS={"WAIT_TIMOUT": 3, "OUTPUT_LIMIT": -1, "SENSITIVE_OPTIONS": "dsn"}
)
def test_settings_unknown_keys_and_bad_values():
    assert settings_messages() == [
        ("managed_commands.E001", "MANAGED_COMMANDS has an unknown key 'WAIT_TIMOUT'."),
        (
            "managed_commands.E001",
            "MANAGED_COMMANDS['OUTPUT_LIMIT'] must be a number >= 0, not -1.",
        ),
        (
            "managed_commands.E001",
            "MANAGED_COMMANDS['SENSITIVE_OPTIONS'] must be a list of option names.",
        ),
    ]
