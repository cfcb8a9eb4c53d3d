"""The streaming split of replies that may call tools: prose passes, protocol text is held and parsed."""

from __future__ import annotations

import json

import pytest

from steerlm.tool_stream import MAYBE, NO, YES, ToolReplySplitter, opener_state

CALL = json.dumps({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})


@pytest.mark.parametrize(("text", "state"), [
    ("{", MAYBE), ('{"tool_c', MAYBE), ('{ "tool_calls"', YES), ('{"name"', YES), ("```", MAYBE),
    ("```json\n{", MAYBE), ('```json\n{"tool_calls"', YES), ('```\n{"name"', YES), ("{x", NO), ('{"city"', NO),
    ("`code`", NO), ("plain", NO),
])
def test_opener_states(text: str, state: int) -> None:
    assert opener_state(text) == state


def test_prose_streams_delta_by_delta_and_a_split_opener_is_held_then_parsed() -> None:
    deltas = ["Let me ", "check {x} ", "then ", "``", "`json\n" + CALL[:3], CALL[3:20], CALL[20:], "\n```"]
    splitter = ToolReplySplitter()
    shown = [splitter.feed(d) for d in deltas]
    assert shown[:3] == ["Let me ", "check {x} ", "then "] and not any(shown[3:])
    tail, parsed = splitter.finish()
    assert tail == "" and parsed.content == "Let me check {x} then "
    assert [(c.name, dict(c.arguments)) for c in parsed.tool_calls] == [("get_weather", {"city": "Paris"})]


def test_a_reply_that_is_only_the_protocol_shows_nothing() -> None:
    splitter = ToolReplySplitter()
    assert splitter.feed(CALL) == ""
    tail, parsed = splitter.finish()
    assert tail == "" and parsed.content == "" and parsed.tool_calls[0].name == "get_weather"


def test_braces_that_are_not_the_protocol_are_released() -> None:
    splitter = ToolReplySplitter()
    assert [splitter.feed(d) for d in ["Final ", "answer: ", "{", "}", " ok"]] == ["Final ", "answer: ", "", "{}",
                                                                                   " ok"]
    splitter.feed("{")
    tail, parsed = splitter.finish()
    assert tail == "{" and parsed.content == "Final answer: {} ok{" and not parsed.tool_calls


def test_broken_protocol_becomes_an_invalid_call_and_trailing_prose_is_kept() -> None:
    splitter = ToolReplySplitter()
    splitter.feed("Sure.")
    splitter.feed('{"tool_calls": [')
    tail, parsed = splitter.finish()
    assert tail == "" and parsed.content == "Sure." and len(parsed.invalid_tool_calls) == 1
    done = ToolReplySplitter()
    done.feed(CALL + " Done.")
    tail, parsed = done.finish()
    assert tail == "Done." and parsed.tool_calls and parsed.content == "Done."
