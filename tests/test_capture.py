from __future__ import annotations

import io

from managed_commands.runs.capture import BoundedText, TeeStream


def test_short_text_is_kept_whole():
    text = BoundedText(10)
    text.write("abc")
    text.write("de")
    assert text.getvalue() == "abcde" and text.dropped == 0


def test_long_text_keeps_head_and_tail_with_a_marker():
    text = BoundedText(10)
    for chunk in ("0123", "4567", "89ab", "cdef"):
        text.write(chunk)
    assert text.dropped == 6
    assert text.getvalue() == "01234\n[... managed_commands: 6 characters not stored ...]\nbcdef"


def test_one_huge_write_is_cut_before_it_is_stored():
    text = BoundedText(10)
    text.write("x" * 1_000_000 + "END")
    assert text.getvalue().endswith("xxEND")
    assert sum(len(c) for c in text._tail) == 5


def test_stored_text_is_sanitised_but_the_target_gets_it_unchanged():
    target = io.StringIO()
    sink = BoundedText(100)
    tee = TeeStream(target, sink)
    raw = "nul\x00 bad\udcff \x1b[32;1mgreen\x1b[0m café"
    assert tee.write(raw) == len(raw)
    assert target.getvalue() == raw
    assert sink.getvalue() == "nul\ufffd bad\ufffd green café"


def test_tee_delegates_to_its_target():
    target = io.StringIO()
    tee = TeeStream(target, BoundedText(10))
    assert tee.isatty() is False
    assert tee.encoding == "utf-8"
    assert tee.getvalue() == ""
