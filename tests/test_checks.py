from __future__ import annotations

from django.test.utils import override_settings

from managed_commands.checks import check_settings


def ids(messages):
    return [(m.id, m.msg) for m in messages]


def test_defaults_pass():
    assert check_settings() == []


@override_settings(MANAGED_COMMANDS=["WAIT_TIMEOUT"])
def test_not_a_dict():
    assert ids(check_settings()) == [
        ("managed_commands.E001", "MANAGED_COMMANDS must be a dict, not list.")
    ]


@override_settings(
    MANAGED_COMMANDS={"WAIT_TIMOUT": 3, "OUTPUT_LIMIT": -1, "SENSITIVE_OPTIONS": "dsn"}
)
def test_unknown_keys_and_bad_values():
    assert ids(check_settings()) == [
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
