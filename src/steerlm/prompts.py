"""Byte-exact prompt rendering for every seed model, with control-token neutralisation.

Layout (NeMo chat grammar, REFERENCE §2): ``<extra_id_0>System\\n{system}\\n`` (plus one more ``\\n``
for SteerLM-Llama2-13B), then ``<extra_id_1>User\\n{text}\\n`` / ``<extra_id_1>Assistant\\n{text}\\n``
turns, and the generation prompt ``<extra_id_1>Assistant\\n`` — followed, for SteerLM profiles, by the
label line ``<extra_id_2>{labels}\\n``. Earlier assistant turns of a SteerLM conversation carry their own
label line (their own attributes if the message has them, else the request's).

Deterministic handling of unusual conversations:

* every system message, wherever it stands, goes into the header; several are joined with a blank line
  (``\\n\\n``); any system message replaces the profile's default system text;
* consecutive messages of the same role become one turn, joined with a blank line;
* ``tool`` messages become user turns starting with ``Tool result (name, call id):``;
* assistant tool calls are rendered as the JSON of the tool protocol (`steerlm.tools`).

Injection: any occurrence of ``<extra_id_`` in user-controlled text — also after Unicode NFKC
normalisation (fullwidth ``＜``, small-form ``﹤``, fullwidth letters or digits) — has its ``<`` replaced
by ``‹`` (U+2039), so it cannot become a control token. ``strict=True`` raises PromptError instead.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from steerlm.errors import PromptError
from steerlm.profiles import ModelProfile, get_profile
from steerlm.tools import TOOL_RESULT_PREFIX, ToolCall, as_tool_calls, render_tool_calls

__all__ = [
    "CLOSED_QA_INSTRUCTION",
    "MARKER_ESCAPE",
    "Message",
    "closed_qa_text",
    "format_prompt",
    "neutralize",
    "render",
    "to_messages",
]

Role = Literal["system", "user", "assistant", "tool"]
SYSTEM_START, TURN_START, LABEL_START = "<extra_id_0>", "<extra_id_1>", "<extra_id_2>"
MARKER_PREFIX = "<extra_id_"
MARKER_ESCAPE = "\u2039"  # '‹' takes the place of the '<' of a neutralised marker
CLOSED_QA_INSTRUCTION = (
    "This is a chat between a user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions based on the context. The assistant "
    "should also indicate when the answer cannot be found in the context."
)
_ROLE_ALIASES: dict[str, Role] = {"system": "system", "user": "user", "human": "user",
                                  "assistant": "assistant", "ai": "assistant", "tool": "tool"}


@dataclass(frozen=True)
class Message:
    """One neutral chat message. `attributes` on an assistant turn are the labels it was made with."""

    role: Role
    content: str
    attributes: Mapping[str, int] | None = None
    tool_calls: tuple[ToolCall, ...] = field(default=())
    name: str | None = None
    tool_call_id: str | None = None


def to_messages(messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
    """Accept Message objects or ``{"role", "content", ...}`` dicts; raise PromptError on bad input."""
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable):
        raise PromptError(f"messages must be a list of Message objects or {{'role': ..., 'content': ...}} dicts, "
                          f"got {type(messages).__name__}")
    result: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            result.append(item)
            continue
        if not isinstance(item, Mapping) or "role" not in item:
            raise PromptError(f"message {index} must be a Message or a dict with 'role' and 'content'")
        role = _ROLE_ALIASES.get(str(item["role"]).lower())
        if role is None:
            raise PromptError(f"message {index} has unknown role {item['role']!r}; "
                              "use system, user, assistant or tool")
        content = item.get("content", "")
        if not isinstance(content, str):
            raise PromptError(f"message {index} content must be a string, got {type(content).__name__}")
        result.append(Message(role=role, content=content, attributes=item.get("attributes"),
                              tool_calls=as_tool_calls(item.get("tool_calls"), index), name=item.get("name"),
                              tool_call_id=item.get("tool_call_id")))
    return result


def _marker_starts(text: str) -> list[int]:
    """Indices in `text` of characters that act as the '<' of a (possibly disguised) marker."""
    normalized: list[str] = []
    owner: list[int] = []
    for index, char in enumerate(text):
        piece = unicodedata.normalize("NFKC", char)
        normalized.append(piece)
        owner.extend([index] * len(piece))
    flat = "".join(normalized)
    starts: list[int] = []
    position = flat.find(MARKER_PREFIX)
    while position != -1:
        starts.append(owner[position])
        position = flat.find(MARKER_PREFIX, position + 1)
    # Composition across characters (e.g. combining marks) is covered by re-checking the result.
    return starts


def neutralize(text: str, *, strict: bool = False) -> str:
    """Make `text` unable to produce an ``<extra_id_N>`` control token (see module docstring)."""
    starts = _marker_starts(text)
    if not starts:
        return text
    if strict:
        raise PromptError(
            "message text contains the control token prefix '<extra_id_' (or a Unicode look-alike); "
            "remove it, or use the default escaping mode (strict=False)"
        )
    chars = list(text)
    for index in starts:
        chars[index] = MARKER_ESCAPE
    escaped = "".join(chars)
    return escaped if not _marker_starts(escaped) else neutralize(escaped)


def closed_qa_text(context: str, question: str) -> str:
    """The closed-QA-with-context user text of NV-Llama2-70B-RLHF-Chat (seeds/002)."""
    return (f"{CLOSED_QA_INSTRUCTION}\nContext: {context}\n"
            f"Please give a full and complete answer for the question. {question}")


def _as_turn(message: Message) -> Message:
    if message.role == "tool":
        label = ", ".join(x for x in (message.name, f"call {message.tool_call_id}"
                                      if message.tool_call_id else None) if x)
        header = f"{TOOL_RESULT_PREFIX} ({label}):" if label else f"{TOOL_RESULT_PREFIX}:"
        return Message(role="user", content=f"{header}\n{message.content}")
    if message.role == "assistant" and message.tool_calls:
        calls = render_tool_calls(message.tool_calls)
        text = f"{message.content}\n{calls}" if message.content else calls
        return replace(message, content=text, tool_calls=())
    return message


def _merge_turns(messages: Sequence[Message]) -> list[Message]:
    turns: list[Message] = []
    for message in (_as_turn(m) for m in messages if m.role != "system"):
        if turns and turns[-1].role == message.role:
            previous = turns[-1]
            turns[-1] = replace(previous, content=f"{previous.content}\n\n{message.content}",
                                attributes=previous.attributes or message.attributes)
        else:
            turns.append(message)
    return turns


def _check(turns: Sequence[Message], profile: ModelProfile) -> None:
    if not turns:
        raise PromptError("the conversation is empty: give at least one user message")
    if not any(t.role == "user" for t in turns):
        raise PromptError("the conversation has no user message: add one for the model to answer")
    last = turns[-1].role
    if profile.family == "reward" and last != "assistant":
        raise PromptError("a reward-model conversation must end with the assistant turn to be scored")
    if profile.family != "reward" and last != "user":
        raise PromptError(
            "the last message is from the assistant; a new answer needs a user (or tool) message last"
        )


def render(
    profile: str | ModelProfile,
    messages: Iterable[Message | Mapping[str, Any]],
    attributes: Mapping[str, Any] | None = None,
    *,
    context: str | None = None,
    strict: bool = False,
) -> str:
    """Render a conversation into the exact prompt string the model sees.

    `attributes` override the profile's defaults for the new answer (and for history turns that carry
    none). `context` switches the last user turn to the closed-QA-with-context wording.
    """
    profile = get_profile(profile)
    items = to_messages(messages)
    labels = profile.resolve_attributes(attributes) if profile.family != "reward" else {}
    systems = [m.content for m in items if m.role == "system"]
    turns = _merge_turns(items)
    _check(turns, profile)
    system = neutralize("\n\n".join(systems), strict=strict) if systems else profile.default_system
    parts = [f"{SYSTEM_START}System\n{system}\n", "\n" if profile.blank_line_after_system else ""]
    last_user = max(i for i, t in enumerate(turns) if t.role == "user")
    for index, turn in enumerate(turns):
        text = neutralize(turn.content, strict=strict)
        if turn.role == "user":
            if index == last_user and context is not None:
                text = closed_qa_text(neutralize(context, strict=strict), text)
            parts.append(f"{TURN_START}User\n{text}\n")
            continue
        parts.append(f"{TURN_START}Assistant\n")
        if profile.steerable:
            own = profile.resolve_attributes(labels, turn.attributes) if turn.attributes else labels
            parts.append(f"{LABEL_START}{_label_line(profile, own)}\n")
        parts.append(f"{text}\n")
    if profile.family == "reward":
        parts.append(LABEL_START)
    else:
        parts.append(f"{TURN_START}Assistant\n")
        if profile.steerable:
            parts.append(f"{LABEL_START}{_label_line(profile, labels)}\n")
    return "".join(parts)


def _label_line(profile: ModelProfile, values: Mapping[str, int]) -> str:
    assert profile.attribute_set is not None
    return profile.attribute_set.encode(values)


def format_prompt(
    messages: Iterable[Message | Mapping[str, Any]],
    *,
    profile: str | ModelProfile,
    attributes: Mapping[str, Any] | None = None,
    context: str | None = None,
    strict: bool = False,
) -> str:
    """The public debugging window: exactly the string that goes on the wire (see `render`)."""
    if context is not None and not isinstance(context, str):
        raise PromptError(f"context must be a string (the document text), got {type(context).__name__}")
    return render(profile, messages, attributes, context=context, strict=strict)
