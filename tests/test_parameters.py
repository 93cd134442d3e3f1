from __future__ import annotations

import datetime
import decimal
import uuid
from pathlib import Path

import pytest

from managed_commands.runs.capture import REDACTED, is_sensitive, prepare, to_json


@pytest.mark.parametrize(
    "name",
    ["password", "db_password", "api_key", "key", "secret_value", "auth-token", "apitoken", "pwd"],
)
def test_secret_looking_names(name):
    assert is_sensitive(name)


@pytest.mark.parametrize("name", ["keyboard", "monkey_count", "name", "day", "verbose"])
def test_ordinary_names(name):
    assert not is_sensitive(name)


def test_extra_sensitive_names():
    assert is_sensitive("dsn", ["dsn"]) and is_sensitive("webhook-url", ["webhook_url"])


def test_values_json_cannot_hold_become_text():
    class Thing:
        def __repr__(self):
            return "<Thing>"

    value = {
        "date": datetime.date(2026, 1, 2),
        "dec": decimal.Decimal("1.50"),
        "id": uuid.UUID(int=1),
        "nan": float("nan"),
        "set": {1},
        "obj": Thing(),
        "nul": "a\x00b",
        "path": Path("/srv/exports/prices.csv"),
        1: "int key",
    }
    assert to_json(value) == {
        "date": "2026-01-02",
        "dec": "1.50",
        "id": "00000000-0000-0000-0000-000000000001",
        "nan": "nan",
        "set": [1],
        "obj": "<Thing>",
        "nul": "a\ufffdb",
        "path": "/srv/exports/prices.csv",
        "1": "int key",
    }


def test_prepare_drops_base_options_and_redacts():
    assert prepare(
        ("x",),
        {"verbosity": 1, "stdout": object(), "token": "t", "count": 2, "password": None},
    ) == {"args": ["x"], "options": {"token": REDACTED, "count": 2, "password": None}}


def test_prepare_reads_extra_sensitive_names_once_and_only_when_needed():
    read = []

    def names():
        read.append(True)
        yield "--webhook-url"

    options = {"webhook_url": "https://x", "dsn": "postgres://", "empty": None}
    assert prepare((), options, names()) == {
        "args": [],
        "options": {"webhook_url": REDACTED, "dsn": "postgres://", "empty": None},
    }
    assert read == [True]
    assert prepare((), {"verbosity": 2, "skip_checks": True}, names()) == {
        "args": [],
        "options": {},
    }
    assert read == [True]


def test_subclasses_follow_the_same_rules_as_their_bases():
    import collections
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    class Name(str):
        pass

    value = (collections.OrderedDict(a=(1, 2.0)), Level.HIGH, Name("a\x00"), True, None)
    assert to_json(value) == [{"a": [1, 2.0]}, Level.HIGH, "a\ufffd", True, None]
    assert type(to_json(Level.HIGH)) is Level and type(to_json(Name("n"))) is str
