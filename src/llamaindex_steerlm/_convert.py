"""LlamaIndex objects <-> neutral steerlm objects. Pure functions, no I/O.

* ``ChatMessage`` -> `steerlm.prompts.Message`: roles map onto system / user / assistant / tool; text
  blocks are joined; `ToolCallBlock`s of an assistant message become its tool calls; an assistant
  message's ``additional_kwargs["attributes"]`` are the labels it was generated with (rendered on its
  own label line); a tool message takes its call id from ``additional_kwargs["tool_call_id"]``.
* A reply -> an assistant ``ChatMessage`` carrying the attributes it was generated with, its text and,
  when tools were offered, one `ToolCallBlock` per parsed call; its log-probabilities (when asked for) ->
  ``logprobs`` (`to_logprobs`; in a stream, every entry so far, as ``text`` holds the text so far).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LogProb,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from steerlm.errors import PromptError
from steerlm.logprobs import TokenLogprob
from steerlm.prompts import Message, Role
from steerlm.requests import RequestOptions
from steerlm.tokens import TokenCounter
from steerlm.tool_stream import ToolReplySplitter
from steerlm.tools import ParsedReply, ToolCall, parse_tool_reply
from steerlm.usage import TokenUsage

if TYPE_CHECKING:
    from steerlm.client import StreamChunk

__all__ = [
    "ChatStream",
    "LogprobsSoFar",
    "PreparedRequest",
    "assistant_message",
    "chat_response",
    "completion_response",
    "reply_metadata",
    "to_logprobs",
    "to_messages",
    "tool_calls_of",
]

_ROLES: dict[MessageRole, Role] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "tool",
}


def _text(message: ChatMessage, index: int) -> str:
    parts: list[str] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append(block.text)
        elif not isinstance(block, ToolCallBlock | ThinkingBlock):
            raise PromptError(
                f"message {index} has a {type(block).__name__}; SteerLM models take text only"
            )
    return "\n".join(parts)


def _legacy_call(item: Any) -> ToolCall | None:
    if isinstance(item, ToolSelection):
        return ToolCall(name=item.tool_name, arguments=item.tool_kwargs, id=item.tool_id)
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return ToolCall(name=item["name"], arguments=dict(item.get("arguments") or {}),
                        id=str(item.get("id") or ""))
    return None


def tool_calls_of(message: ChatMessage) -> tuple[ToolCall, ...]:
    """The tool calls an assistant message made (`ToolCallBlock`s, else ``additional_kwargs``)."""
    calls = [
        ToolCall(name=b.tool_name, arguments=b.tool_kwargs if isinstance(b.tool_kwargs, dict) else {},
                 id=b.tool_call_id or "")
        for b in message.blocks if isinstance(b, ToolCallBlock)
    ]
    if not calls:
        legacy = (_legacy_call(x) for x in message.additional_kwargs.get("tool_calls") or ())
        calls = [c for c in legacy if c is not None]
    return tuple(calls)


def to_messages(messages: Sequence[ChatMessage]) -> list[Message]:
    """Convert LlamaIndex chat messages to neutral messages (see the module docstring)."""
    result: list[Message] = []
    for index, message in enumerate(messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise PromptError(f"message {index} has role {message.role.value!r}, which SteerLM cannot render")
        extra = message.additional_kwargs
        if role == "assistant":
            attributes = extra.get("attributes")
            result.append(Message(role="assistant", content=_text(message, index),
                                  attributes=dict(attributes) if attributes else None,
                                  tool_calls=tool_calls_of(message)))
        elif role == "tool":
            result.append(Message(role="tool", content=_text(message, index),
                                  name=extra.get("name") or extra.get("tool_name"),
                                  tool_call_id=extra.get("tool_call_id")))
        else:
            result.append(Message.text(role, _text(message, index)))
    return result


def assistant_message(text: str, attributes: Mapping[str, int], reply: ParsedReply | None = None) -> ChatMessage:
    """The assistant message for a reply; `reply` (tools were offered) adds its tool calls."""
    extra: dict[str, Any] = {"attributes": dict(attributes)} if attributes else {}
    if reply is None:
        return ChatMessage(role=MessageRole.ASSISTANT, content=text, additional_kwargs=extra)
    if reply.invalid_tool_calls:
        extra["invalid_tool_calls"] = [
            {"name": c.name, "arguments": c.arguments, "error": c.error, "id": c.id}
            for c in reply.invalid_tool_calls
        ]
    if reply.tool_calls:  # also in the legacy place that LlamaIndex's streaming structured output reads
        extra["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)}
                               for c in reply.tool_calls]
    blocks: list[Any] = [TextBlock(text=reply.content)]
    blocks.extend(ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=dict(c.arguments))
                  for c in reply.tool_calls)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)


def reply_metadata(
    *, model: str, prompt: str, text: str, finish_reason: str | None, attributes: Mapping[str, int],
    usage: Mapping[str, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(additional_kwargs, raw)`` of a response: what was asked for and what came back."""
    extra: dict[str, Any] = {"model": model, "finish_reason": finish_reason, "attributes": dict(attributes)}
    raw: dict[str, Any] = {"model": model, "prompt": prompt, "text": text, "finish_reason": finish_reason,
                           "attributes": dict(attributes)}
    if usage:
        extra.update(usage)
        raw["usage"] = dict(usage)
    return extra, raw


@dataclass(frozen=True)
class PreparedRequest:
    """One request ready to send, plus what its response must record."""

    model: str
    prompt: str
    options: RequestOptions
    attributes: Mapping[str, int]  # those rendered into the prompt ({} for verbatim prompts)
    tools: bool = False  # tools were offered: parse the reply for tool calls
    counter: TokenCounter | None = None
    prompt_tokens: int | None = None


def to_logprobs(entries: Sequence[TokenLogprob]) -> list[list[LogProb]]:
    """LlamaIndex's ``logprobs``: per generated token, its most likely alternatives (most likely first) when
    `top_logprobs` was asked for, else a one-element list holding the token itself."""
    return [[LogProb(token=t, logprob=v, bytes=list(t.encode("utf-8"))) for t, v in e.top] if e.top
            else [LogProb(token=e.token, logprob=e.logprob, bytes=e.bytes)] for e in entries]


class LogprobsSoFar:
    """A stream's entries so far, each converted once (every response gets copies of the lists, not a new
    conversion of the whole stream)."""

    def __init__(self) -> None:
        self.converted: list[list[LogProb]] = []
        self.values: list[float] = []

    def add(self, entries: Sequence[TokenLogprob] | None) -> LogprobsSoFar:
        if entries:
            self.converted.extend(to_logprobs(entries))
            self.values.extend(e.logprob for e in entries)
        return self


Logprobs = Sequence[TokenLogprob] | LogprobsSoFar | None


def _converted(logprobs: Logprobs) -> tuple[list[list[LogProb]], list[float]] | None:
    if logprobs is None:
        return None
    if isinstance(logprobs, LogprobsSoFar):
        return list(logprobs.converted), list(logprobs.values)
    return to_logprobs(logprobs), [e.logprob for e in logprobs]


def _metadata(request: PreparedRequest, text: str, finish: str | None, server: TokenUsage | None,
              values: list[float] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Usage is the server's token counts when it reported them, else the tokenizer's (when configured)."""
    usage = None
    if server is not None:
        usage = {"prompt_tokens": server.input_tokens, "completion_tokens": server.output_tokens,
                 "total_tokens": server.total_tokens}
    elif finish is not None and request.counter is not None and request.prompt_tokens is not None:
        output = request.counter.count(text)
        usage = {"prompt_tokens": request.prompt_tokens, "completion_tokens": output,
                 "total_tokens": request.prompt_tokens + output}
    extra, raw = reply_metadata(model=request.model, prompt=request.prompt, text=text, finish_reason=finish,
                                attributes=request.attributes, usage=usage)
    if values is not None:  # the generated tokens' values (ChatResponse.logprobs has the tokens)
        extra["logprobs"] = raw["logprobs"] = values
    return extra, raw


def chat_response(request: PreparedRequest, text: str, finish: str | None, delta: str | None = None, *,
                  usage: TokenUsage | None = None, logprobs: Logprobs = None,
                  parsed: ParsedReply | None = None) -> ChatResponse:
    """A chat response; `text` is the whole reply so far, parsed for tool calls once finished (`parsed`:
    already parsed by a stream's splitter). A reply that called tools has ``finish_reason="tool_calls"``."""
    if parsed is None and request.tools and finish is not None:
        parsed = parse_tool_reply(text)
    converted = _converted(logprobs)
    extra, raw = _metadata(request, text, finish, usage, None if converted is None else converted[1])
    if parsed is not None and parsed.tool_calls:
        extra["finish_reason"] = raw["finish_reason"] = "tool_calls"
    # model_construct: every field is built here with its declared type (no validation pass per response)
    return ChatResponse.model_construct(message=assistant_message(text, request.attributes, parsed), delta=delta,
                                        raw=raw, additional_kwargs=extra,
                                        logprobs=None if converted is None else converted[0])


class ChatStream:
    """Core stream chunks -> ChatResponses (shared by the sync and async loops).

    Without tools every chunk becomes a response. With tools offered, prose streams as it comes and the
    tool protocol is held back (`steerlm.tool_stream.ToolReplySplitter`): no protocol text reaches a
    ``delta``; the last response carries the parsed tool calls.
    """

    def __init__(self, request: PreparedRequest) -> None:
        self.request = request
        self.text = ""
        self.splitter = ToolReplySplitter() if request.tools else None
        self.logprobs: LogprobsSoFar | None = None  # every entry so far (like `text`)
        self.done = False

    def response(self, chunk: StreamChunk) -> ChatResponse | None:
        self.text += chunk.text
        if chunk.logprobs is not None:
            self.logprobs = (self.logprobs or LogprobsSoFar()).add(chunk.logprobs)
        if chunk.finish_reason is not None:
            return self.finish(chunk.text, chunk.finish_reason, chunk.usage)
        if self.splitter is None:
            return chat_response(self.request, self.text, None, chunk.text, usage=chunk.usage, logprobs=self.logprobs)
        delta = self.splitter.feed(chunk.text)
        return chat_response(self.request, self.splitter.shown, None, delta, logprobs=self.logprobs) if delta else None

    def finish(self, delta: str = "", finish: str = "stop", usage: TokenUsage | None = None) -> ChatResponse:
        """The last response (also when the stream ended without a finish reason)."""
        self.done = True
        if self.splitter is None:
            return chat_response(self.request, self.text, finish, delta, usage=usage, logprobs=self.logprobs)
        shown = self.splitter.feed(delta)
        tail, parsed = self.splitter.finish()
        return chat_response(self.request, self.text, finish, shown + tail, usage=usage, logprobs=self.logprobs,
                             parsed=parsed)


def completion_response(request: PreparedRequest, text: str, finish: str | None, delta: str | None = None, *,
                        usage: TokenUsage | None = None,
                        logprobs: Logprobs = None) -> CompletionResponse:
    """A completion response; `text` is the whole reply so far, `logprobs` its entries so far."""
    converted = _converted(logprobs)
    extra, raw = _metadata(request, text, finish, usage, None if converted is None else converted[1])
    return CompletionResponse.model_construct(text=text, delta=delta, raw=raw, additional_kwargs=extra,
                                              logprobs=None if converted is None else converted[0])
