import pytest

from managed_commands.formatting import human_duration, pretty_json


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "—"),
        (0, "0 ms"),
        (0.0004, "0 ms"),
        (0.85, "850 ms"),
        (0.9996, "1.0 s"),
        (2.44, "2.4 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 00 s"),
        (185.2, "3 min 05 s"),
        (3599.4, "59 min 59 s"),
        (3599.6, "1 h 00 min"),
        (7380, "2 h 03 min"),
        (90061, "25 h 01 min"),
    ],
)
def test_human_duration(seconds, expected):
    assert human_duration(seconds) == expected


def test_pretty_json_keeps_text_and_sorts_keys():
    assert pretty_json({"b": "café", "a": [1]}) == '{\n  "a": [\n    1\n  ],\n  "b": "café"\n}'
