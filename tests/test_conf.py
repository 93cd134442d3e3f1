"""The typed accessors of the MANAGED_COMMANDS settings, read at call time."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from managed_commands import conf

NOT_CALLABLE = "site-1"


def scope_of(connection):
    return "site-1"


@override_settings(MANAGED_COMMANDS={})
def test_defaults_and_their_types():
    values = {
        "output_limit": conf.output_limit(),
        "sensitive_options": conf.sensitive_options(),
        "redact_patterns": conf.redact_patterns(),
        "capture_logs_level": conf.capture_logs_level(),
        "wait_timeout": conf.wait_timeout(),
        "lease_seconds": conf.lease_seconds(),
        "history_database": conf.history_database(),
        "scope_function": conf.scope_function(),
        "scope_setting_is_set": conf.scope_setting_is_set(),
        "migrate_notice": conf.migrate_notice(),
        "tenant_database": conf.tenant_database(),
        "public_schema": conf.public_schema(),
    }
    assert values == {
        "output_limit": 100_000,
        "sensitive_options": (),
        "redact_patterns": (),
        "capture_logs_level": None,
        "wait_timeout": 300.0,
        "lease_seconds": 60.0,
        "history_database": "default",
        "scope_function": None,
        "scope_setting_is_set": False,
        "migrate_notice": True,
        "tenant_database": "default",
        "public_schema": "public",
    }
    assert type(values["wait_timeout"]) is float
    assert type(values["lease_seconds"]) is float


def test_without_the_setting_the_defaults_apply(settings):
    del settings.MANAGED_COMMANDS
    assert (conf.output_limit(), conf.wait_timeout(), conf.migrate_notice()) == (100_000, 300, True)


def test_the_test_settings_are_read():
    # tests/settings.py sets these two (from the environment, 60 unless set).
    assert type(conf.wait_timeout()) is float
    assert type(conf.lease_seconds()) is float


@override_settings(
    MANAGED_COMMANDS={
        "OUTPUT_LIMIT": 10,
        "SENSITIVE_OPTIONS": ["dsn", "token"],
        "CAPTURE_LOGS": "warning",
        "WAIT_TIMEOUT": 5,
        "LEASE_SECONDS": 0.5,
        "DATABASE": "default",
        "SCOPE": "tests.test_conf.scope_of",
        "MIGRATE_NOTICE": False,
    },
    TENANT_DB_ALIAS="tenants",
    PUBLIC_SCHEMA_NAME="shared",
)
def test_configured_values_are_returned_with_their_types():
    assert conf.output_limit() == 10
    assert conf.sensitive_options() == ("dsn", "token")
    assert conf.capture_logs_level() == logging.WARNING
    assert (conf.wait_timeout(), type(conf.wait_timeout())) == (5.0, float)
    assert conf.lease_seconds() == 0.5
    assert conf.history_database() == "default"
    assert conf.scope_function() is scope_of
    assert conf.scope_setting_is_set() is True
    assert conf.migrate_notice() is False
    assert conf.tenant_database() == "tenants"
    assert conf.public_schema() == "shared"


@pytest.mark.parametrize(
    ("value", "level"),
    [(False, None), (None, None), (True, 20), (15, 15), (0, 0), ("DEBUG", 10), ("warn", 30)],
)
def test_capture_logs_level(value, level):
    with override_settings(MANAGED_COMMANDS={"CAPTURE_LOGS": value}):
        assert conf.capture_logs_level() == level


def test_a_callable_scope_is_used_as_is():
    with override_settings(MANAGED_COMMANDS={"SCOPE": scope_of}):
        assert conf.scope_function() is scope_of


def test_settings_are_read_at_call_time():
    with override_settings(MANAGED_COMMANDS={"OUTPUT_LIMIT": 1}):
        assert conf.output_limit() == 1
    with override_settings(MANAGED_COMMANDS={"OUTPUT_LIMIT": 2}):
        assert conf.output_limit() == 2


@pytest.mark.parametrize(
    ("accessor", "settings_value", "message"),
    [
        (
            conf.output_limit,
            {"OUTPUT_LIMIT": "10"},
            "MANAGED_COMMANDS['OUTPUT_LIMIT'] must be an integer >= 0, not '10'. "
            "Give the number of characters of output stored per run; the default is 100000.",
        ),
        (
            conf.sensitive_options,
            {"SENSITIVE_OPTIONS": "dsn"},
            "MANAGED_COMMANDS['SENSITIVE_OPTIONS'] must be a list of option names, not 'dsn'. "
            "Give a list of option names, for example ['dsn', 'webhook_url']; "
            "the default is [] (only the built-in secret-looking names).",
        ),
        (
            conf.capture_logs_level,
            {"CAPTURE_LOGS": "LOUD"},
            "MANAGED_COMMANDS['CAPTURE_LOGS'] must be False, True, a logging level or its "
            "name such as 'INFO', not 'LOUD'. Use False (the default) to store no log "
            "records, True for INFO and above, or a level such as 'WARNING' or logging.WARNING.",
        ),
        (
            conf.wait_timeout,
            {"WAIT_TIMEOUT": -1},
            "MANAGED_COMMANDS['WAIT_TIMEOUT'] must be a number >= 0, not -1. Give the "
            "seconds a start waits for a running holder of the same command; the default is 300.",
        ),
        (
            conf.lease_seconds,
            {"LEASE_SECONDS": True},
            "MANAGED_COMMANDS['LEASE_SECONDS'] must be a number >= 0, not True. Give the "
            "seconds without a heartbeat after which a run on another host is presumed "
            "gone; the default is 60.",
        ),
        (
            conf.history_database,
            {"DATABASE": "nope"},
            "MANAGED_COMMANDS['DATABASE'] must be None or an alias of DATABASES, not 'nope'. "
            "Name an alias of DATABASES, or use None (the default) to let the database "
            "routers choose.",
        ),
        (
            conf.scope_function,
            {"SCOPE": 3},
            "MANAGED_COMMANDS['SCOPE'] is not a callable or a dotted path, but 3. Give the "
            "dotted path of a function taking the connection and returning the scope, "
            "e.g. 'mysite.scopes.current_site', or None (the default).",
        ),
        (
            conf.scope_setting_is_set,
            {"SCOPE": "tests.test_conf.NOT_CALLABLE"},
            "MANAGED_COMMANDS['SCOPE'] names 'site-1', which is not callable. Give the "
            "dotted path of a function taking the connection and returning the scope, "
            "e.g. 'mysite.scopes.current_site', or None (the default).",
        ),
        (
            conf.migrate_notice,
            {"MIGRATE_NOTICE": "no"},
            "MANAGED_COMMANDS['MIGRATE_NOTICE'] must be True or False, not 'no'. Use True "
            "(the default) to list the pending run_once commands after migrate, or False.",
        ),
    ],
)
def test_a_bad_value_raises_the_checks_message(accessor, settings_value, message):
    with (
        override_settings(MANAGED_COMMANDS=settings_value),
        pytest.raises(ImproperlyConfigured) as raised,
    ):
        accessor()
    assert str(raised.value) == message


@override_settings(MANAGED_COMMANDS=[("WAIT_TIMEOUT", 1)])
def test_settings_that_are_not_a_dict_raise():
    with pytest.raises(ImproperlyConfigured) as raised:
        conf.wait_timeout()
    assert str(raised.value) == "MANAGED_COMMANDS must be a dict, not list."


def test_every_setting_has_its_own_check_id():
    assert [(s.name, s.check_id) for s in conf.SETTINGS] == [
        ("OUTPUT_LIMIT", "managed_commands.E011"),
        ("SENSITIVE_OPTIONS", "managed_commands.E012"),
        ("CAPTURE_LOGS", "managed_commands.E013"),
        ("WAIT_TIMEOUT", "managed_commands.E014"),
        ("LEASE_SECONDS", "managed_commands.E015"),
        ("DATABASE", "managed_commands.E016"),
        ("SCOPE", "managed_commands.E017"),
        ("MIGRATE_NOTICE", "managed_commands.E018"),
        ("RECONNECT_TIMEOUT", "managed_commands.E019"),
        ("REDACT", "managed_commands.E022"),
        ("RELEASE", "managed_commands.E024"),
        ("METADATA", "managed_commands.E025"),
        ("QUEUE_TIMEOUT", "managed_commands.E032"),
        ("HEALTH_TOKEN", "managed_commands.E035"),
    ]


def test_every_default_passes_its_own_validation():
    assert [s.name for s in conf.SETTINGS if s.problem(s.default) is not None] == []
