from __future__ import annotations

import pytest

from managed_commands.runs.capture import _ANSI_ESCAPE, _UNSTORABLE, clean_text, clip_name


def test_short_names_are_kept():
    assert clip_name("load_catalog") == "load_catalog"


def test_long_names_are_clipped_and_stay_distinct():
    a, b = clip_name("a" * 300), clip_name("a" * 299 + "b")
    assert len(a) == len(b) == 255 and a != b
    assert a.startswith("a" * 246 + "~")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii",
        "nul\x00inside\x00",
        "\x1b[1;31mred\x1b[0m and \x1b[Kclear",
        "\x1b[31m\x00\x1b[0m",
        "café ✓ 数据",
        "lone \udcff surrogate and \ud800",
        "\x1b[32mgrün\x1b[0m\x00\udc80",
        "\x1b not a colour code",
    ],
)
def test_clean_text_drops_colours_and_replaces_unstorable_characters(text):
    expected = _UNSTORABLE.sub("\ufffd", _ANSI_ESCAPE.sub("", text))
    assert clean_text(text) == expected
    assert "\x1b[" not in clean_text(text) and "\x00" not in clean_text(text)
