from __future__ import annotations

from managed_commands.runs.sanitize import clip_name


def test_short_names_are_kept():
    assert clip_name("load_catalog") == "load_catalog"


def test_long_names_are_clipped_and_stay_distinct():
    a, b = clip_name("a" * 300), clip_name("a" * 299 + "b")
    assert len(a) == len(b) == 255 and a != b
    assert a.startswith("a" * 246 + "~")
