"""What a run stores of a secret it printed: ``********``, in every stored text."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DataError
from django.test import override_settings

from managed_commands import conf
from managed_commands.models import CommandExecution
from managed_commands.recorder import ExecutionRecorder
from managed_commands.runs.capture import REDACTED, BoundedText, Redactor, prepare

SECRET = "s3cr3t-value"
KEY = re.compile(r"sk_live_[0-9a-zA-Z]{24}")


def masked(options, text, sensitive=(), patterns=()):
    return Redactor(options, sensitive, patterns).stored(text=text)["text"]


def bounded(limit, *writes):
    text = BoundedText(limit)
    for piece in writes:
        text.write(piece)
    return text


def test_the_value_of_a_secret_option_is_masked_wherever_it_appears():
    redactor = Redactor({"api_token": SECRET, "count": 3}, (), ())
    assert redactor.stored(
        output=f"token {SECRET}, again {SECRET}.",
        error_message=f"ValueError: bad {SECRET}",
        traceback=bounded(1000, f'raise ValueError(f"bad {SECRET}")\n'),
    ) == {
        "output": "token ********, again ********.",
        "error_message": "ValueError: bad ********",
        "traceback": 'raise ValueError(f"bad ********")\n',
    }


def test_the_options_masked_are_exactly_those_the_parameters_redact():
    options = {
        "password": "hunter22",
        "dsn": "postgres://u:p@db/x",
        "name": "report-2026",
        "keyboard": "qwerty",
        "verbosity": 1234,
        "rerun": "RERUN",
    }
    text = " ".join(str(v) for v in options.values())
    sensitive = ["dsn"]
    hidden = {n for n, v in prepare((), options, sensitive)["options"].items() if v == REDACTED}
    assert hidden == {"password", "dsn"}
    assert masked(options, text, sensitive) == "******** ******** report-2026 qwerty 1234 RERUN"


def test_each_item_of_a_list_or_tuple_is_masked():
    options = {"tokens": ["first-token", ("second-token", 12345)]}
    assert masked(options, "first-token second-token 12345 ['x']") == (
        "******** ******** ******** ['x']"
    )


def test_values_shorter_than_four_characters_are_not_masked():
    options = {"pin": "123", "key": "abcd", "password": True, "secret": 7}
    assert masked(options, "123 abcd True 7 abcde") == "123 ******** True 7 ********e"


def test_the_longest_value_is_masked_whole():
    options = {"token": "abcd", "api_key": "abcdefgh"}
    assert masked(options, "abcdefgh abcd") == "******** ********"


def test_without_secrets_or_patterns_the_text_is_stored_as_captured():
    text = bounded(10, "0123456789", "abcdefghij", "ABCDEFGHIJ")
    assert masked({"token": None, "name": "01234"}, text) == text.getvalue()


def test_a_value_cut_by_the_marker_is_masked_on_both_sides():
    # The head keeps "aaaaaaaTOP" and the tail "SECRET1bbb": neither holds
    # the whole value, and both would give part of it away.
    text = bounded(20, "aaaaaaaTOPSECRET1", "c" * 30, "TOPSECRET1bbb")
    head, tail = text.cut()
    assert (head, tail) == ("aaaaaaaTOP", "SECRET1bbb")
    stored = masked({"token": "TOPSECRET1"}, text)
    assert stored == f"aaaaaaa********{text.marker()}********bbb"
    assert "TOP" not in stored and "ET1" not in stored


def test_the_output_so_far_masks_a_value_its_start_cuts():
    redactor = Redactor({"token": "TOPSECRET1"}, (), ())
    text = bounded(1000, "first line\n", "aaTOPSECRET1bb\n", "TOPSECRET1 ok\n")
    # The last 13 characters begin inside the value: its end would give part of it away.
    assert text.last(13) == ("OPSECRET1 ok\n", True)
    assert redactor.last(text, 13) == "******** ok\n"
    assert redactor.last(text, 25) == "********bb\n******** ok\n"
    assert redactor.last(text, 1000) == "first line\naa********bb\n******** ok\n"
    # Past the bound: the newest characters come from the kept tail.
    long = bounded(20, "x" * 50, "the end: TOPSECRET1")
    assert long.last(12) == ("TOPSECRET1", True)  # the tail keeps 10
    assert redactor.last(long, 12) == "********"


def test_the_cut_masks_the_longest_part_of_any_value():
    # The head ends with 4 characters of one value and 7 of the other.
    text = bounded(20, "aaaxyzwORDzzz", "c" * 30, "PASSw!!!!!")
    assert text.cut() == ("aaaxyzwORD", "PASSw!!!!!")
    options = {"token": "wORDPASS", "password": "xyzwORDS"}
    assert masked(options, text) == f"aaa********{text.marker()}********w!!!!!"


def test_text_around_the_cut_that_begins_no_value_is_kept():
    text = bounded(20, "aaaaaaaaaX", "c" * 30, "Ybbbbbbbbb")
    assert masked({"token": "YYYYX"}, text) == text.getvalue()


def test_a_traceback_cut_by_the_marker_is_masked_too():
    text = bounded(20, "Traceback (most recent call last):\n", "x" * 100, f"Error: {SECRET}!")
    assert text.getvalue().endswith(f"{text.marker()}r3t-value!")
    stored = masked({"token": SECRET}, text)
    assert stored.endswith(f"{text.marker()}********!")


def test_redact_patterns_mask_each_match():
    key = "sk_live_" + "0123456789abcdefghijKLMN"
    patterns = [KEY, re.compile("password=\\S+", re.IGNORECASE)]
    text = f"key {key}, PASSWORD=hunter2 sk_live_short"
    assert masked({}, text, patterns=patterns) == "key ********, ******** sk_live_short"


def test_a_pattern_that_matches_nothing_masks_no_empty_places():
    assert masked({}, "a key here", patterns=[re.compile(r"\bkey\b|x*")]) == "a ******** here"


@override_settings(MANAGED_COMMANDS={"REDACT": [r"sk_live_\w+", KEY]})
def test_the_setting_gives_compiled_patterns_read_at_call_time():
    patterns = conf.redact_patterns()
    assert [p.pattern for p in patterns] == [r"sk_live_\w+", KEY.pattern]
    assert patterns[1] is KEY
    assert conf.redact_patterns() == patterns
    with override_settings(MANAGED_COMMANDS={"REDACT": [r"sk_live_\w+"]}):
        assert [p.pattern for p in conf.redact_patterns()] == [r"sk_live_\w+"]


@override_settings(MANAGED_COMMANDS={"REDACT": ["("]})
def test_a_pattern_that_does_not_compile_raises_the_checks_message():
    with pytest.raises(ImproperlyConfigured, match=r"E?'\(': missing \), unterminated subpattern"):
        conf.redact_patterns()


@pytest.mark.django_db
def test_a_note_stored_in_place_of_the_output_never_quotes_the_error(monkeypatch):
    # The end's write fails with an error quoting the secret: the note that
    # replaces the output names the error's class and code, never its text.
    finish = ExecutionRecorder.finish
    calls = []

    def fail_once(self, execution, lock_key, **fields):
        calls.append(fields["output"])
        if len(calls) == 1:
            raise DataError(f"value too long: token={SECRET}")
        return finish(self, execution, lock_key, **fields)

    monkeypatch.setattr(ExecutionRecorder, "finish", fail_once)
    with pytest.raises(ValueError, match=SECRET):
        call_command("leaky", f"--api-token={SECRET}", stdout=StringIO(), stderr=StringIO())
    row = CommandExecution.objects.get(command_name="leaky")
    assert row.output == "[managed_commands: output not stored: DataError]"
    assert row.error_message == "ValueError: the API refused token ********"
