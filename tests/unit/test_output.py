"""Output clean-up, and the property that streaming through StopMatcher equals cleaning whole."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from steerlm import StopMatcher, clean_completion, strip_echo

STOPS = ["<extra_id_1>", "quality:", "you", "\n\nEND"]
PIECES = ["<extra_id_1>", "<extra_id_", "<ext", "<", "quality", ":", "qual", "\n", "you", "yo", "u",
          "END", "a", "b ", "<extra_id_2>", "<extra_id_0"]
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=30).map("".join)


def _stream(text: str, cuts: list[int], stops: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    out = "".join(matcher.feed(text[a:b]) for a, b in itertools.pairwise(points))
    return out + matcher.finish(), matcher.stopped


@settings(max_examples=3000, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
       stops=st.lists(st.sampled_from(STOPS), max_size=4))
def test_any_chunking_equals_cleaning_whole(text: str, cuts: list[int], stops: list[str]) -> None:
    assert _stream(text, cuts, stops) == clean_completion(text, stops)


@settings(max_examples=1000, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_streamed_text_never_contains_a_stop(text: str, cuts: list[int]) -> None:
    out, _ = _stream(text, cuts, STOPS)
    assert not any(stop in out for stop in STOPS)


def test_cut_at_first_stop_and_drop_one_lf() -> None:
    assert clean_completion("Hello there.\n<extra_id_1>User\nmore", ["<extra_id_1>"]) == ("Hello there.", True)
    assert clean_completion("a\n\n<extra_id_1>", ["<extra_id_1>"]) == ("a\n", True)
    assert clean_completion("no stop here", ["<extra_id_1>"]) == ("no stop here", False)
    assert clean_completion("x quality:4,toxicity:0", ["<extra_id_1>", "quality:"]) == ("x ", True)


def test_dangling_partial_marker_is_dropped_at_the_end() -> None:
    assert clean_completion("answer\n<extra_id", ["<extra_id_1>"]) == ("answer", False)
    assert clean_completion("x <ex", ["<extra_id_1>"]) == ("x <ex", False)  # too short to call residue


def test_stop_spanning_chunks() -> None:
    matcher = StopMatcher(["<extra_id_1>"])
    assert matcher.feed("Hi <extra") == "Hi "
    assert not matcher.stopped
    assert matcher.feed("_id_1>User") == ""
    assert matcher.stopped
    assert matcher.stop_string == "<extra_id_1>"
    assert matcher.feed("later") == ""


def test_overlapping_stops_pick_the_earliest_start_like_whole_text() -> None:
    assert _stream("abcd", [3], ["abcd", "c"]) == clean_completion("abcd", ["abcd", "c"]) == ("", True)


def test_strip_echo_with_and_without_markers() -> None:
    prompt = "<extra_id_0>System\n\n<extra_id_1>User\nhi\n<extra_id_1>Assistant\n"
    assert strip_echo(prompt + "Hello", prompt) == "Hello"
    assert strip_echo("System\n\nUser\nhi\nAssistant\nHello", prompt) == "Hello"
    assert strip_echo("Unrelated", prompt) == "Unrelated"
    assert clean_completion(prompt + "Hi!\n<extra_id_1>", ["<extra_id_1>"], prompt=prompt) == ("Hi!", True)


def test_a_held_newline_is_released_or_dropped_like_whole_text() -> None:
    matcher = StopMatcher(["<extra_id_1>"])
    assert [matcher.feed(d) for d in ("one\n", "two\n", "three")] == ["one", "\ntwo", "\nthree"]
    assert [matcher.feed(d) for d in ("\n", "<extra_id_1>", "more")] == ["", "", ""]
    assert matcher.stopped and matcher.finish() == ""
    lf_stop = StopMatcher(["\nUser"])  # a stop starting with LF: the held LF may begin it
    assert [lf_stop.feed(d) for d in ("Hi\n", "User: x")] == ["Hi", ""]
    assert lf_stop.stopped
