"""LangChain messages <-> neutral steerlm objects, and replies -> AIMessage(Chunk)s. Pure, no I/O.

* System / Human / AI / Tool / Chat messages map onto the core roles; text blocks are joined, other
  blocks in a user, system or tool message raise PromptError (the models take text only). An AIMessage
  keeps its tool calls, and the steering attributes in ``response_metadata["steerlm_attributes"]`` —
  the labels it was generated with — so it is rendered with its own label line.
* A reply becomes an AIMessage with ``response_metadata`` (``model_name``, ``finish_reason``,
  ``model_provider``, ``steerlm_attributes``), ``usage_metadata`` when tokens are counted, and — when
  tools were offered — the protocol's ``tool_calls`` / ``invalid_tool_calls``.
* A stream's core chunks become ChatGenerationChunks (`StreamState`, shared by `_stream` and
  `_astream`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models.model_profile import ModelProfile as LCModelProfile
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_steerlm._logprobs import chat_logprobs
from langchain_steerlm._params import ATTRIBUTES_KEY
from steerlm.errors import PromptError
from steerlm.profiles import ModelProfile
from steerlm.prompts import Message, Role
from steerlm.tool_stream import ToolReplySplitter
from steerlm.tools import ParsedReply, ToolCall, parse_tool_reply

if TYPE_CHECKING:
    from langchain_steerlm._run import Prepared
    from steerlm.client import StreamChunk
    from steerlm.logprobs import TokenLogprob
    from steerlm.usage import TokenUsage

__all__ = ["StreamState", "ai_message", "capability_profile", "final_chunk", "reply_metadata", "to_core_messages",
           "usage"]

_CHAT_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "human": "user",
                                "assistant": "assistant", "ai": "assistant", "tool": "tool",
                                "function": "tool"}


def _text(message: BaseMessage, index: int, *, text_only: bool) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif text_only:
            raise PromptError(
                f"message {index} has a {block.get('type')!r} content block; SteerLM models take text only"
            )
    return "".join(parts)


def _labels(message: AIMessage, profile: ModelProfile) -> dict[str, int] | None:
    labels = message.response_metadata.get(ATTRIBUTES_KEY)
    if labels is None or not isinstance(labels, Mapping) or not profile.steerable:
        return None
    # Labels of another attribute set (a different model) do not apply to this profile.
    return dict(labels) if set(labels) <= set(profile.attribute_names) else None


def _one(message: BaseMessage, index: int, profile: ModelProfile) -> Message:
    if isinstance(message, AIMessage):
        calls = tuple(ToolCall(name=c["name"], arguments=c["args"], id=c.get("id") or "")
                      for c in message.tool_calls)
        return Message(role="assistant", content=_text(message, index, text_only=False),
                       attributes=_labels(message, profile), tool_calls=calls)
    if isinstance(message, ToolMessage):
        text = _text(message, index, text_only=True)
        if message.status == "error" and not text.lower().startswith("error"):
            text = f"Error: {text}"
        return Message(role="tool", content=text, name=message.name, tool_call_id=message.tool_call_id)
    if isinstance(message, FunctionMessage):
        return Message(role="tool", content=_text(message, index, text_only=True), name=message.name)
    if isinstance(message, SystemMessage | HumanMessage):
        role: Role = "system" if isinstance(message, SystemMessage) else "user"
        return Message(role=role, content=_text(message, index, text_only=True))
    if isinstance(message, ChatMessage) and message.role.lower() in _CHAT_ROLES:
        return Message(role=_CHAT_ROLES[message.role.lower()], content=_text(message, index, text_only=True))
    raise PromptError(f"message {index} ({type(message).__name__}, role {getattr(message, 'role', '?')!r}) "
                      "cannot be rendered; use system, human, ai or tool messages")


_PLAIN: dict[type, Role] = {HumanMessage: "user", SystemMessage: "system"}
_new = object.__new__


def to_core_messages(messages: Sequence[BaseMessage], profile: ModelProfile) -> list[Message]:
    """Convert a LangChain conversation for rendering with `profile` (plain text messages take a short
    path: one type lookup)."""
    out: list[Message] = []
    for index, message in enumerate(messages):
        kind, content = type(message), message.content
        if type(content) is str:
            role = _PLAIN.get(kind)
            if role is None and kind is AIMessage and not message.tool_calls:  # type: ignore[attr-defined]
                role = "assistant"
                labels = _labels(message, profile) if message.response_metadata else None  # type: ignore[arg-type]
            else:
                labels = None
            if role is not None:  # `Message.text(role, content, labels)`, inlined (once per message)
                plain = _new(Message)
                plain.__dict__.update(role=role, content=content, attributes=labels)
                out.append(plain)
                continue
        out.append(_one(message, index, profile))
    return out


def capability_profile(profile: ModelProfile) -> LCModelProfile:
    """LangChain's capability profile of a steerlm profile. The cards give 4,096 tokens for input and
    output together: output is bounded by the same window."""
    return LCModelProfile(name=profile.name, max_input_tokens=profile.context_window,
                          max_output_tokens=profile.context_window, text_inputs=True, text_outputs=True,
                          tool_calling=True, tool_choice=True, tool_call_streaming=True, structured_output=False)


def reply_metadata(model: str, finish_reason: str, profile: ModelProfile,
                   attributes: Mapping[str, int]) -> dict[str, Any]:
    """``response_metadata`` of a reply (the attributes only for steerable profiles)."""
    meta: dict[str, Any] = {"model_name": model, "finish_reason": finish_reason, "model_provider": "steerlm",
                            "steerlm_profile": profile.name}
    if profile.steerable:
        meta[ATTRIBUTES_KEY] = dict(attributes)
    return meta


def usage(input_tokens: int | None, output_tokens: int | None) -> UsageMetadata | None:
    """Usage metadata when tokens were counted, else None."""
    if input_tokens is None or output_tokens is None:
        return None
    return UsageMetadata(input_tokens=input_tokens, output_tokens=output_tokens,
                         total_tokens=input_tokens + output_tokens)


def _calls(parsed: ParsedReply) -> dict[str, Any]:
    return {
        "tool_calls": [tool_call(name=c.name, args=dict(c.arguments), id=c.id) for c in parsed.tool_calls],
        "invalid_tool_calls": [invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
                               for c in parsed.invalid_tool_calls],
    }


def ai_message(text: str, metadata: dict[str, Any], usage_metadata: UsageMetadata | None, *,
               tools_offered: bool) -> AIMessage:
    """The AIMessage of a whole reply (only the fields that are set are passed: each costs validation);
    a reply that called tools has ``finish_reason="tool_calls"``."""
    fields: dict[str, Any] = {"response_metadata": metadata}
    if usage_metadata is not None:
        fields["usage_metadata"] = usage_metadata
    if not tools_offered:
        return AIMessage(content=text, **fields)
    parsed = parse_tool_reply(text)
    if parsed.tool_calls:
        metadata["finish_reason"] = "tool_calls"
    return AIMessage(content=parsed.content, **fields, **_calls(parsed))


def _call_chunks(parsed: ParsedReply) -> dict[str, Any]:
    chunks = [tool_call_chunk(name=c.name, args=json.dumps(dict(c.arguments), ensure_ascii=False), id=c.id,
                              index=i) for i, c in enumerate(parsed.tool_calls)]
    invalid = [invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
               for c in parsed.invalid_tool_calls]
    return {"tool_call_chunks": chunks, "invalid_tool_calls": invalid}


def final_chunk(delta: str, metadata: dict[str, Any], usage_metadata: UsageMetadata | None, *,
                parsed: ParsedReply | None = None) -> AIMessageChunk:
    """The last chunk of a stream (``chunk_position="last"``): the last prose delta and — when tools were
    offered — the reply's tool calls as ``tool_call_chunks`` (`parsed`, the protocol part held back by
    `steerlm.tool_stream.ToolReplySplitter`), with ``finish_reason="tool_calls"``."""
    calls: dict[str, Any] = {}
    if parsed is not None:
        calls = _call_chunks(parsed)
        if parsed.tool_calls:
            metadata["finish_reason"] = "tool_calls"
    return AIMessageChunk(content=delta, response_metadata=metadata, usage_metadata=usage_metadata,
                          chunk_position="last", **calls)


class StreamState:
    """Core stream chunks -> ChatGenerationChunks (shared by the sync and async loops).

    When tools were offered, prose still streams delta by delta; the tool protocol (from its first
    possible opener on) is held back by `ToolReplySplitter` and comes out parsed in the last chunk.
    """

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.parts: list[str] = []  # the deltas, kept when usage needs the whole text
        self._keep = prepared.counter is not None
        self.splitter = ToolReplySplitter() if prepared.tools_offered else None
        self.logprobs: list[TokenLogprob] | None = None  # arrived, not yet shown on a chunk
        self.done = False
        self._plain = not self._keep and self.splitter is None  # deltas become chunks as they are

    def feed(self, chunk: StreamChunk) -> ChatGenerationChunk | None:
        if self._plain and chunk.finish_reason is None and chunk.logprobs is None and self.logprobs is None:
            text = chunk.text  # the per-token path: a mid-stream delta, nothing kept or held back
            return ChatGenerationChunk(message=AIMessageChunk(content=text)) if text else None
        if self._keep:
            self.parts.append(chunk.text)
        if chunk.logprobs is not None:  # each entry rides on the next chunk shown (the merged chunk has all)
            self.logprobs = [*(self.logprobs or ()), *chunk.logprobs]
        if chunk.finish_reason is not None:
            return self.finish(chunk.text, chunk.finish_reason, chunk.usage)
        text = chunk.text if self.splitter is None else self.splitter.feed(chunk.text)
        if not text:
            return None
        if self.logprobs is None:
            return ChatGenerationChunk(message=AIMessageChunk(content=text))
        meta, self.logprobs = {"logprobs": chat_logprobs(self.logprobs)}, None
        return ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=meta))

    def finish(self, delta: str = "", finish_reason: str = "stop", server: TokenUsage | None = None
               ) -> ChatGenerationChunk:
        """The last chunk: metadata, usage (the server's, else the tokenizer's), tool calls when offered."""
        self.done = True
        p, parsed = self.prepared, None
        if self.splitter is not None:
            shown = self.splitter.feed(delta)
            tail, parsed = self.splitter.finish()
            delta = shown + tail
        return ChatGenerationChunk(message=p.check_strict(final_chunk(
            delta, p.metadata(finish_reason, self.logprobs), p.usage_for("".join(self.parts), server), parsed=parsed)))
