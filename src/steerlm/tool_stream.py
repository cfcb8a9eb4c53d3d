"""Streaming a reply that may call tools: prose passes through at once, the tool protocol is held back.

A reply to a prompt that offers tools (`steerlm.tools`) is prose, a protocol JSON object
(``{"tool_calls": [...]}`` or ``{"name": ..., "arguments": ...}``, possibly in a code fence), or prose
then the object. `ToolReplySplitter` is fed the text deltas and returns what can be shown now: every
character up to the first place where the protocol could start. Only a short suffix that could still
turn out to open the protocol (``{``, `` ``` ``, ``{"tool_c``...) is held back; once an opener is seen
everything after it is held and parsed by `parse_tool_reply` when the stream ends (`finish`), so no
protocol text ever reaches the caller. Pure logic, shared by the LangChain and LlamaIndex adapters.
"""

from __future__ import annotations

from dataclasses import dataclass

from steerlm.tools import ParsedReply, parse_tool_reply

__all__ = ["ToolReplySplitter", "opener_state"]

_FENCES = ("```json", "```")
_KEYS = ('"tool_calls"', '"name"')
NO, MAYBE, YES = 0, 1, 2


def opener_state(text: str) -> int:
    """YES when `text` starts with a protocol opener, MAYBE when it is a prefix of one, else NO."""
    rest = text
    if rest.startswith("`"):
        for fence in _FENCES:
            if fence.startswith(rest):
                return MAYBE
            if rest.startswith(fence):
                rest = rest[len(fence):]
                break
        else:
            return NO
        rest = rest.lstrip()
        if not rest:
            return MAYBE
    if not rest.startswith("{"):
        return NO
    rest = rest[1:].lstrip()
    if not rest:
        return MAYBE
    for key in _KEYS:
        if rest.startswith(key):
            return YES
        if key.startswith(rest):
            return MAYBE
    return NO


def _first_candidate(text: str) -> tuple[int, int]:
    """The index of the first place the protocol could start in `text` and its state (len, NO if none)."""
    index = 0
    while index < len(text):
        brace, tick = text.find("{", index), text.find("`", index)
        found = min(i for i in (brace, tick, len(text)) if i != -1)
        if found == len(text):
            break
        state = opener_state(text[found:])
        if state != NO:
            return found, state
        index = found + 1
    return len(text), NO


@dataclass
class ToolReplySplitter:
    """Feed text deltas, get the prose to show now; `finish` parses what was held back.

    ``shown`` is the prose already returned, ``held`` the text not shown yet; ``in_protocol`` turns
    True at the first complete opener and stays True.
    """

    shown: str = ""
    held: str = ""
    in_protocol: bool = False

    def feed(self, delta: str) -> str:
        """The part of the reply so far that is prose and can be shown now ("" while holding)."""
        if self.in_protocol:
            self.held += delta
            return ""
        text = self.held + delta
        index, state = _first_candidate(text)
        self.in_protocol = state == YES
        out, self.held = text[:index], text[index:]
        self.shown += out
        return out

    def finish(self) -> tuple[str, ParsedReply]:
        """``(prose not shown yet, the whole reply parsed)``: content is all prose shown, tool calls parsed."""
        held, self.held = self.held, ""
        if not self.in_protocol:  # no opener seen: still parse (an odd key order is a call too)
            self.shown += held
            parsed = parse_tool_reply(self.shown)
            return held, ParsedReply(self.shown, parsed.tool_calls, parsed.invalid_tool_calls)
        parsed = parse_tool_reply(held)
        tail = parsed.content
        if tail and self.shown and not self.shown[-1].isspace():
            tail = " " + tail
        self.shown += tail
        return tail, ParsedReply(self.shown, parsed.tool_calls, parsed.invalid_tool_calls)
