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

Injection: any occurrence of ``<extra_id_`` in user-controlled text — also after the tokenizer's
normalisation (NFKC: fullwidth ``＜``, small-form ``﹤``, fullwidth letters or digits; and the control
characters SentencePiece deletes, as in ``<extra\x01_id_1>``) — has its ``<`` replaced by ``‹`` (U+2039),
so it cannot become a control token (`steerlm.markers`). ``strict=True`` raises PromptError instead.

Rendering is one linear pass; the request's attributes are validated and its label line encoded once per
(profile, attributes), not per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from steerlm.attributes import AttributeSet
from steerlm.errors import PromptError
from steerlm.markers import MARKER_ESCAPE, marker_starts, neutralize
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

    @classmethod
    def text(cls, role: Role, content: str, attributes: Mapping[str, int] | None = None) -> Message:
        """A message without tool calls, name or call id — what the adapters convert most messages to.

        Equal to ``Message(role, content, attributes)``, built about three times faster: the frozen
        dataclass's ``__init__`` sets each of the six fields through ``object.__setattr__``; here only
        the three given ones go into the instance dict (the others are the class defaults).
        """
        message = object.__new__(cls)
        message.__dict__.update(role=role, content=content, attributes=attributes)
        return message


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


def closed_qa_text(context: str, question: str) -> str:
    """The closed-QA-with-context user text of NV-Llama2-70B-RLHF-Chat (seeds/002)."""
    return (f"{CLOSED_QA_INSTRUCTION}\nContext: {context}\n"
            f"Please give a full and complete answer for the question. {question}")


def _turn_text(message: Message) -> tuple[Role, str]:
    """The role and text a message takes in its turn (tool results are user text, calls are JSON)."""
    if message.role == "tool":
        label = ", ".join(x for x in (message.name, f"call {message.tool_call_id}"
                                      if message.tool_call_id else None) if x)
        header = f"{TOOL_RESULT_PREFIX} ({label}):" if label else f"{TOOL_RESULT_PREFIX}:"
        return "user", f"{header}\n{message.content}"
    if message.role == "assistant" and message.tool_calls:
        calls = render_tool_calls(message.tool_calls)
        return "assistant", f"{message.content}\n{calls}" if message.content else calls
    return message.role, message.content


class _Turn:
    """One turn being collected: consecutive messages of one role (joined with a blank line)."""

    __slots__ = ("attributes", "parts", "role")

    def __init__(self, role: Role, text: str, attributes: Mapping[str, int] | None) -> None:
        self.role, self.parts, self.attributes = role, [text], attributes


def _collect(items: Sequence[Message]) -> tuple[list[str], list[_Turn]]:
    """System texts and turns, in one linear pass (a run of same-role messages is one turn whose
    attributes are the first ones given in the run)."""
    systems: list[str] = []
    turns: list[_Turn] = []
    for message in items:
        role = message.role
        if role == "system":
            systems.append(message.content)
            continue
        if role == "tool" or message.tool_calls:
            role, text = _turn_text(message)
        else:
            text = message.content
        if turns and turns[-1].role == role:
            last = turns[-1]
            last.parts.append(text)
            last.attributes = last.attributes or message.attributes
        else:
            turns.append(_Turn(role, text, message.attributes))
    return systems, turns


_LABELS: dict[tuple[int, Any], tuple[ModelProfile, dict[str, int], str]] = {}
_LABELS_MAX = 512


def _labels(profile: ModelProfile, attributes: Mapping[str, Any] | None) -> tuple[dict[str, int], str]:
    """The request's resolved attributes and its label line, cached per (profile, attributes): both are
    validated and encoded once, not per call. The key holds each value's type, so ``True`` or ``4.0``
    never hit the entry of a valid ``1`` or ``4``."""
    try:
        key = (id(profile), (tuple(attributes.items()), tuple(map(type, attributes.values()))) if attributes else ())
        hit = _LABELS.get(key)
    except (TypeError, AttributeError):  # unhashable or not a mapping: resolve_attributes reports it
        key, hit = None, None
    if hit is not None and hit[0] is profile:
        return hit[1], hit[2]
    labels = profile.resolve_attributes(attributes)
    line = _label_line(profile, labels) if profile.steerable else ""
    if key is not None:
        if len(_LABELS) >= _LABELS_MAX:
            _LABELS.clear()
        _LABELS[key] = (profile, labels, line)
    return labels, line


def _last_user(turns: Sequence[_Turn], profile: ModelProfile) -> int:
    """The index of the last user turn, once the conversation is one the profile can answer (or score)."""
    if not turns:
        raise PromptError("the conversation is empty: give at least one user message")
    last_user = len(turns) - 1
    while last_user >= 0 and turns[last_user].role != "user":
        last_user -= 1
    if last_user < 0:
        raise PromptError("the conversation has no user message: add one for the model to answer")
    last = turns[-1].role
    if profile.family == "reward" and last != "assistant":
        raise PromptError("a reward-model conversation must end with the assistant turn to be scored")
    if profile.family != "reward" and last != "user":
        raise PromptError(
            "the last message is from the assistant; a new answer needs a user (or tool) message last"
        )
    return last_user


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
    labels, label_line = _labels(profile, attributes) if profile.family != "reward" else ({}, "")
    systems, turns = _collect(items)
    last_user = _last_user(turns, profile)
    system = neutralize("\n\n".join(systems), strict=strict) if systems else profile.default_system
    parts = [f"{SYSTEM_START}System\n{system}\n", "\n" if profile.blank_line_after_system else ""]
    texts = [turn.parts[0] if len(turn.parts) == 1 else "\n\n".join(turn.parts) for turn in turns]
    # One scan of all the turns' texts (a line feed breaks any marker, so none spans two texts); each
    # text is neutralised on its own only when the scan finds a marker.
    clean = not marker_starts("\n".join(texts))
    for index, turn in enumerate(turns):
        text = texts[index] if clean else neutralize(texts[index], strict=strict)
        if turn.role == "user":
            if index == last_user and context is not None:
                text = closed_qa_text(neutralize(context, strict=strict), text)
            parts.append(f"{TURN_START}User\n{text}\n")
            continue
        line = label_line  # "" unless the profile is steerable
        if turn.attributes and profile.steerable:  # the labels this earlier answer was made with
            line = _label_line(profile, profile.resolve_attributes(labels, turn.attributes))
        parts.append(f"{TURN_START}Assistant\n{line}{text}\n")
    if profile.family == "reward":
        parts.append(LABEL_START)
    else:
        parts.append(f"{TURN_START}Assistant\n{label_line}")
    return "".join(parts)


@lru_cache(maxsize=256)
def _encoded(attribute_set: AttributeSet, values: tuple[tuple[str, int], ...]) -> str:
    return f"{LABEL_START}{attribute_set.encode(dict(values))}\n"


def _label_line(profile: ModelProfile, values: Mapping[str, int]) -> str:
    """``<extra_id_2>name:value,...\n`` (encoded once per attribute values)."""
    assert profile.attribute_set is not None
    return _encoded(profile.attribute_set, tuple(values.items()))


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
