"""System checks of the managed commands' definitions and requires."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
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
REDACT_HINT = (
    "Give a list of regular expressions (strings or re.compile() patterns), for example "
    "[r'sk_live_[0-9a-zA-Z]{24}']; the default is []."
)


def found():
    return [(m.id, m.obj, m.msg, m.hint) for m in checks.check_commands()]


def test_the_test_project_passes():
    assert checks.check_commands() == []


@BROKEN
def test_every_mistake_is_reported_with_its_id_and_hint():
    assert [(id_, obj) for id_, obj, _, _ in found()] == [
        ("managed_commands.W001", "import_error"),
        ("managed_commands.E007", "bad_requires"),
        ("managed_commands.E008", "requires_itself"),
        ("managed_commands.E004", "requires_plain"),
        ("managed_commands.E004", "requires_plain"),
        ("managed_commands.E003", "requires_typo"),
        ("managed_commands.E005", "cycle_a"),
        ("managed_commands.E006", "needs_migration"),
        ("managed_commands.E006", "needs_migration"),
    ]


@BROKEN
def test_definition_problems_come_from_the_definition():
    messages = {
        (obj, msg)
        for id_, obj, msg, _ in found()
        if id_ in ("managed_commands.E007", "managed_commands.E008")
    }
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


TIMEOUTS = override_settings(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "managed_commands",
        "tests.timeoutapp",
    ]
)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite has no database timeouts")
@TIMEOUTS
def test_database_timeouts_on_sqlite_are_a_warning():
    assert [(i, obj, m, h) for i, obj, m, h in found()] == [
        (
            "managed_commands.W002",
            name,
            f"'{name}' sets {attributes}, but the database its commands run on ('default') "
            "is SQLite, which has no such timeouts: they are ignored there.",
            "Remove them, or run the command on PostgreSQL, MariaDB or MySQL. "
            "time_limit works on every database.",
        )
        for name, attributes in [
            ("lock_row", "lock_timeout"),
            ("show_timeouts", "statement_timeout and lock_timeout"),
            ("slow_query", "statement_timeout"),
        ]
    ]


@pytest.mark.skipif(connection.vendor == "sqlite", reason="databases with timeouts")
@TIMEOUTS
def test_database_timeouts_elsewhere_pass():
    assert checks.check_commands() == []


@override_settings(MIGRATION_MODULES={"testapp": None})
def test_an_app_without_migrations_has_none_to_require(monkeypatch):
    from managed_commands.loader import discover

    commands = discover().commands
    needing = replace(commands["needs_schema"], requires=("testapp.0001_initial",))
    monkeypatch.setitem(commands, "needs_schema", needing)
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
    [error] = checks.check_settings()
    assert (error.id, error.msg, error.hint) == (
        "managed_commands.E001",
        "MANAGED_COMMANDS must be a dict, not list.",
        "Set MANAGED_COMMANDS = {} or remove it to use the defaults.",
    )


@override_settings(
    MANAGED_COMMANDS={"WAIT_TIMOUT": 3, "OUTPUT_LIMIT": -1, "SENSITIVE_OPTIONS": "dsn"}
)
def test_settings_unknown_keys_and_bad_values():
    assert settings_messages() == [
        ("managed_commands.E010", "MANAGED_COMMANDS has an unknown key 'WAIT_TIMOUT'."),
        (
            "managed_commands.E011",
            "MANAGED_COMMANDS['OUTPUT_LIMIT'] must be an integer >= 0, not -1.",
        ),
        (
            "managed_commands.E012",
            "MANAGED_COMMANDS['SENSITIVE_OPTIONS'] must be a list of option names, not 'dsn'.",
        ),
    ]


@override_settings(MANAGED_COMMANDS={"WAIT_TIMOUT": 3})
def test_an_unknown_key_close_to_a_known_one_suggests_it():
    [error] = checks.check_settings()
    assert error.hint == "Did you mean 'WAIT_TIMEOUT'?"


@override_settings(MANAGED_COMMANDS={"COLOUR": True, 3: "x"})
def test_an_unknown_key_far_from_any_lists_the_known_ones():
    known = (
        "Known keys: CAPTURE_LOGS, DATABASE, HEALTH_TOKEN, LEASE_SECONDS, METADATA, "
        "MIGRATE_NOTICE, OUTPUT_LIMIT, QUEUE_TIMEOUT, RECONNECT_TIMEOUT, REDACT, RELEASE, SCOPE, "
        "SENSITIVE_OPTIONS, WAIT_TIMEOUT."
    )
    assert [(m.id, m.msg, m.hint) for m in checks.check_settings()] == [
        ("managed_commands.E010", "MANAGED_COMMANDS has an unknown key 3.", known),
        ("managed_commands.E010", "MANAGED_COMMANDS has an unknown key 'COLOUR'.", known),
    ]


@pytest.mark.parametrize(
    ("settings_value", "check_id", "message", "hint"),
    [
        (
            {"OUTPUT_LIMIT": 2.5},
            "managed_commands.E011",
            "MANAGED_COMMANDS['OUTPUT_LIMIT'] must be an integer >= 0, not 2.5.",
            "Give the number of characters of output stored per run; the default is 100000.",
        ),
        (
            {"SENSITIVE_OPTIONS": ["dsn", 3]},
            "managed_commands.E012",
            "MANAGED_COMMANDS['SENSITIVE_OPTIONS'] must be a list of option names, not ['dsn', 3].",
            "Give a list of option names, for example ['dsn', 'webhook_url']; "
            "the default is [] (only the built-in secret-looking names).",
        ),
        (
            {"CAPTURE_LOGS": "LOUD"},
            "managed_commands.E013",
            "MANAGED_COMMANDS['CAPTURE_LOGS'] must be False, True, a logging level or its "
            "name such as 'INFO', not 'LOUD'.",
            "Use False (the default) to store no log records, True for INFO and above, "
            "or a level such as 'WARNING' or logging.WARNING.",
        ),
        (
            {"CAPTURE_LOGS": -10},
            "managed_commands.E013",
            "MANAGED_COMMANDS['CAPTURE_LOGS'] must be False, True, a logging level or its "
            "name such as 'INFO', not -10.",
            "Use False (the default) to store no log records, True for INFO and above, "
            "or a level such as 'WARNING' or logging.WARNING.",
        ),
        (
            {"WAIT_TIMEOUT": "5"},
            "managed_commands.E014",
            "MANAGED_COMMANDS['WAIT_TIMEOUT'] must be a number >= 0, not '5'.",
            "Give the seconds a start waits for a running holder of the same command; "
            "the default is 300.",
        ),
        (
            {"LEASE_SECONDS": float("nan")},
            "managed_commands.E015",
            "MANAGED_COMMANDS['LEASE_SECONDS'] must be a number >= 0, not nan.",
            "Give the seconds without a heartbeat after which a run on another host is "
            "presumed gone; the default is 60.",
        ),
        (
            {"QUEUE_TIMEOUT": -1},
            "managed_commands.E032",
            "MANAGED_COMMANDS['QUEUE_TIMEOUT'] must be a number >= 0, not -1.",
            "Give the seconds an enqueued run may wait for a worker before it is presumed "
            "lost; the default is 3600.",
        ),
        (
            {"DATABASE": ""},
            "managed_commands.E016",
            "MANAGED_COMMANDS['DATABASE'] must be None or an alias of DATABASES, not ''.",
            "Name an alias of DATABASES, or use None (the default) to let the database "
            "routers choose.",
        ),
        (
            {"SCOPE": ""},
            "managed_commands.E017",
            "MANAGED_COMMANDS['SCOPE'] cannot be imported ( doesn't look like a module path).",
            "Give the dotted path of a function taking the connection and returning the "
            "scope, e.g. 'mysite.scopes.current_site', or None (the default).",
        ),
        (
            {"MIGRATE_NOTICE": "no"},
            "managed_commands.E018",
            "MANAGED_COMMANDS['MIGRATE_NOTICE'] must be True or False, not 'no'.",
            "Use True (the default) to list the pending run_once commands after migrate, or False.",
        ),
        (
            {"REDACT": [r"sk_live_\w+", "token=(["]},
            "managed_commands.E022",
            "MANAGED_COMMANDS['REDACT'] has a pattern that does not compile, 'token=([': "
            "unterminated character set at position 7.",
            REDACT_HINT,
        ),
        (
            {"REDACT": [re.compile(rb"key")]},
            "managed_commands.E022",
            "MANAGED_COMMANDS['REDACT'] must hold text patterns, not the bytes pattern "
            "re.compile(b'key').",
            REDACT_HINT,
        ),
        (
            {"REDACT": [3]},
            "managed_commands.E022",
            "MANAGED_COMMANDS['REDACT'] must hold strings or compiled patterns, not 3.",
            REDACT_HINT,
        ),
        (
            {"REDACT": "sk_live_"},
            "managed_commands.E022",
            "MANAGED_COMMANDS['REDACT'] must be a list of regular expressions, not 'sk_live_'.",
            REDACT_HINT,
        ),
        (
            {"RELEASE": 42},
            "managed_commands.E024",
            "MANAGED_COMMANDS['RELEASE'] must be None, a string or a callable returning one, "
            "not 42.",
            "Give a string such as os.environ.get('GIT_SHA', ''), a function returning one, "
            "or None (the default) to read the environment variable MANAGED_COMMANDS_RELEASE.",
        ),
        (
            {"METADATA": "nowhere.at_all"},
            "managed_commands.E025",
            "MANAGED_COMMANDS['METADATA'] cannot be imported (No module named 'nowhere').",
            "Give a function taking the command and returning JSON-ready data, or its "
            "dotted path, e.g. 'mysite.audit.run_metadata', or None (the default).",
        ),
    ],
)
def test_each_bad_setting_has_its_own_id(settings_value, check_id, message, hint):
    with override_settings(MANAGED_COMMANDS=settings_value):
        [error] = checks.check_settings()
    assert (error.id, error.msg, error.hint) == (check_id, message, hint)


@pytest.mark.parametrize(
    "settings_value",
    [
        {"OUTPUT_LIMIT": 0, "WAIT_TIMEOUT": 0, "LEASE_SECONDS": 0.5},
        {"SENSITIVE_OPTIONS": ("dsn",), "MIGRATE_NOTICE": False},
        {"CAPTURE_LOGS": None},
        {"CAPTURE_LOGS": True},
        {"CAPTURE_LOGS": 15},
        {"CAPTURE_LOGS": "warning"},
        {"SCOPE": len},
        {"REDACT": (r"sk_live_[0-9a-zA-Z]{24}", re.compile("token=\\S+", re.IGNORECASE))},
    ],
)
def test_good_settings_pass(settings_value):
    with override_settings(MANAGED_COMMANDS=settings_value):
        assert checks.check_settings() == []


def test_both_checks_have_our_own_tag():
    assert checks.check_settings.tags == ("managed_commands",)
    assert checks.check_commands.tags == ("managed_commands",)


@override_settings(MANAGED_COMMANDS={"MIGRATE_NOTICE": 1})
def test_manage_py_check_tag_managed_commands_runs_the_settings_check():
    with pytest.raises(SystemCheckError, match=r"\(managed_commands\.E018\) MANAGED_COMMANDS"):
        call_command("check", tags=["managed_commands"])


PHASES_APP = override_settings(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "managed_commands",
        "tests.testapp",
        "tests.phasesapp",
    ]
)


@PHASES_APP
def test_phases_and_tags_pass_when_a_post_migrate_command_requires_a_pre_migrate_one():
    assert checks.check_commands() == []


@PHASES_APP
def test_a_pre_migrate_command_requiring_a_post_migrate_one_is_e028(monkeypatch):
    from managed_commands.loader import discover

    commands = discover().commands
    early = replace(commands["warm_cache"], requires=("reindex", "phasesapp.0001_initial"))
    monkeypatch.setitem(commands, "warm_cache", early)
    [message] = checks.check_commands()
    assert (message.id, message.obj, message.msg, message.hint) == (
        "managed_commands.E028",
        "warm_cache",
        "'warm_cache' is a pre_migrate command but requires 'reindex', a post_migrate "
        "command: it would still be pending when 'warm_cache' runs before migrate.",
        "Make 'reindex' pre_migrate too (phase = 'pre_migrate'), or 'warm_cache' post_migrate.",
    )


RENAMES_APP = override_settings(
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "managed_commands",
        "tests.testapp",
        "tests.renamesafter",
    ]
)


@RENAMES_APP
def test_a_rename_passes_once_the_old_command_is_gone():
    assert checks.check_commands() == []


@RENAMES_APP
def test_requiring_a_replaced_name_names_the_new_one(monkeypatch):
    from managed_commands.loader import discover

    commands = discover().commands
    monkeypatch.setitem(
        commands, "after_populate", replace(commands["after_populate"], requires=("fill_slugs",))
    )
    [message] = checks.check_commands()
    assert (message.id, message.obj, message.msg, message.hint) == (
        "managed_commands.E003",
        "after_populate",
        "'after_populate' requires 'fill_slugs', which was renamed to 'populate_slugs' "
        "(its replaces lists 'fill_slugs').",
        "Require 'populate_slugs' instead: its history includes the runs of 'fill_slugs'.",
    )


@RENAMES_APP
def test_two_commands_replacing_one_name_is_e031(monkeypatch):
    from managed_commands.loader import discover

    commands = discover().commands
    monkeypatch.setitem(
        commands, "after_populate", replace(commands["after_populate"], replaces=("fill_slugs",))
    )
    [message] = checks.check_commands()
    assert (message.id, message.obj, message.msg) == (
        "managed_commands.E031",
        "after_populate",
        "'after_populate' and 'populate_slugs' all replace 'fill_slugs': its runs would "
        "count for each of them.",
    )


@RENAMES_APP
def test_replacing_a_name_still_installed_is_e030(monkeypatch):
    from managed_commands.loader import discover

    commands = discover().commands
    monkeypatch.setitem(
        commands, "populate_slugs", replace(commands["populate_slugs"], replaces=("once",))
    )
    [message] = checks.check_commands()
    assert (message.id, message.obj) == ("managed_commands.E030", "populate_slugs")
    assert message.msg == (
        "'populate_slugs' replaces 'once', but 'once' is still a command (of 'tests.testapp'): "
        "its runs would count for both."
    )
