"""Reading a run's recorded parameters back into ``call_command()`` arguments."""

import datetime

import pytest
from django.core.management.base import CommandError, CommandParser

from managed_commands.runs.capture import call_arguments, prepare


def parser():
    parser = CommandParser()
    parser.add_argument("source")
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--day", type=datetime.date.fromisoformat)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--skip", type=int, action="append")
    parser.add_argument("--mode", default="fast")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--token")
    return parser


def recorded(*argv):
    """The ``parameters`` a run given ``argv`` records."""
    return prepare([], vars(parser().parse_args(argv)))


def test_positionals_and_converted_options_go_back_as_a_command_line():
    args, options = call_arguments(
        "copy",
        parser(),
        recorded(
            "db", "a", "b", "--day", "2026-01-31", "--size", "5", "--skip", "1", "--skip", "2"
        ),
    )
    assert args == [
        *("db", "a", "b"),
        *("--day", "2026-01-31", "--size", "5"),
        *("--skip", "1", "--skip", "2"),
    ]
    assert options == {}
    assert parser().parse_args(args).day == datetime.date(2026, 1, 31)


def test_flags_and_plain_values_go_back_as_keywords_and_defaults_are_left_out():
    assert call_arguments("copy", parser(), recorded("db", "--all", "--mode", "slow")) == (
        ["db"],
        {"all": True, "mode": "slow"},
    )


def test_no_parameters_is_no_arguments():
    assert call_arguments("copy", parser(), {}) == ([], {})


def test_a_redacted_secret_cannot_be_given_back():
    with pytest.raises(CommandError, match="the value of token was redacted"):
        call_arguments("copy", parser(), recorded("db", "--token", "s3cret"))


def test_parameters_not_recorded_by_a_managed_run_are_refused():
    with pytest.raises(CommandError, match="not recorded by a managed run"):
        call_arguments("copy", parser(), {"text": "hello"})
