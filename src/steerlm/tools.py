"""A prompted JSON tool-calling protocol, shared by the LangChain and LlamaIndex adapters.

The seed models have no native tool-call format. `tool_instructions` renders the tool schemas into the
system turn between ``<tools>`` and ``</tools>`` with a strict reply format::

    {"tool_calls": [{"name": "<tool name>", "arguments": {...}}]}

`parse_tool_reply` finds that object anywhere in the reply (code fences and surrounding prose are
tolerated), returns valid calls as `ToolCall` and malformed ones as `InvalidToolCall` — never raises.
Tool results go back to the model as user turns that begin with ``Tool result``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TOOL_RESULT_PREFIX",
    "InvalidToolCall",
    "ParsedReply",
    "ToolCall",
    "ToolSpec",
    "extract_offered_tools",
    "parse_tool_reply",
    "render_tool_calls",
    "required_call_guide",
    "tool_call_schema",
    "tool_instructions",
]

TOOL_RESULT_PREFIX = "Tool result"
_TOOLS_BLOCK = re.compile(r"<tools>\n(.*?)\n</tools>", re.DOTALL)


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: name, description and a JSON schema for its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}


@dataclass(frozen=True)
class ToolCall:
    """A well-formed call: the tool's name, its arguments and a call id."""

    name: str
    arguments: Mapping[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


def as_tool_calls(calls: object, index: int = 0) -> tuple[ToolCall, ...]:
    """A message's ``tool_calls``: ToolCall objects, or dicts ``{"name", "arguments" (or "args"), "id"?}``
    (the OpenAI / LangChain shapes); PromptError saying what to fix for anything else."""
    from steerlm.errors import PromptError

    if not calls:
        return ()
    if isinstance(calls, str | bytes | Mapping) or not isinstance(calls, Sequence):
        raise PromptError(f"message {index}: tool_calls must be a list of ToolCall objects or dicts, "
                          f"got {type(calls).__name__}")
    out = []
    for call in calls:
        if isinstance(call, ToolCall):
            out.append(call)
            continue
        fn = call.get("function") if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping) else call
        name = fn.get("name") if isinstance(fn, Mapping) else None
        args = fn.get("arguments", fn.get("args", {})) if isinstance(fn, Mapping) else None
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = None
        if not isinstance(name, str) or not name or not isinstance(args, Mapping):
            raise PromptError(f"message {index}: each tool call needs a 'name' (string) and 'arguments' (a dict "
                              f"or a JSON object string), got {str(call)[:80]!r}")
        call_id = call.get("id") if isinstance(call, Mapping) else None
        out.append(ToolCall(name, dict(args), call_id) if isinstance(call_id, str) else ToolCall(name, dict(args)))
    return tuple(out)


@dataclass(frozen=True)
class InvalidToolCall:
    """A call the reply tried to make but that could not be parsed; `error` says why."""

    name: str | None
    arguments: str | None
    error: str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass(frozen=True)
class ParsedReply:
    """A model reply split into its prose `content` and its tool calls."""

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    invalid_tool_calls: tuple[InvalidToolCall, ...] = ()


def tool_instructions(tools: Sequence[ToolSpec], tool_choice: str | None = None) -> str:
    """The text appended to the system turn that offers `tools` (empty for no tools / "none")."""
    if not tools or tool_choice == "none":
        return ""
    schemas = json.dumps([t.as_dict() for t in tools], ensure_ascii=False, sort_keys=True)
    if tool_choice in (None, "auto"):
        rule = "If a tool helps, call it; otherwise answer the user directly in plain text."
    elif tool_choice in ("any", "required"):
        rule = "You must call at least one of these tools now."
    else:
        rule = f"You must call the tool {tool_choice!r} now."
    return (
        "You can call the following tools. Their JSON schemas:\n"
        f"<tools>\n{schemas}\n</tools>\n"
        "To call tools, reply with only this JSON object and nothing else:\n"
        '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments matching its schema>}}]}\n'
        f"{rule} Tool results come back in a user turn starting with \"{TOOL_RESULT_PREFIX}\"."
    )


def tool_call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The JSON schema of a protocol reply that calls one or more of `tools` (for guided decoding when a
    call is required: ``tool_choice`` "any" or a tool's name)."""
    defs: dict[str, dict[str, Any]] = {}
    calls = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": _hoisted(t.parameters, defs)},
              "required": ["name", "arguments"]} for t in tools]
    items = calls[0] if len(calls) == 1 else {"anyOf": calls}
    schema: dict[str, Any] = {"type": "object", "required": ["tool_calls"],
                              "properties": {"tool_calls": {"type": "array", "items": items, "minItems": 1}}}
    for key, found in defs.items():
        schema[key] = found
    return schema


def _hoisted(parameters: Mapping[str, Any], defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`parameters` without its ``$defs`` / ``definitions``, which move to `defs` (the root of the call schema,
    where its ``#/$defs/...`` references point); kept in place when another tool defines the same name
    differently."""
    out = dict(parameters)
    for key in ("$defs", "definitions"):
        found = out.get(key)
        if not isinstance(found, Mapping):
            continue
        target = defs.setdefault(key, {})
        if any(name in target and target[name] != value for name, value in found.items()):
            continue
        target.update(found)
        del out[key]
    return out


def required_call_guide(tools: Sequence[ToolSpec], tool_choice: str | None) -> dict[str, Any] | None:
    """The guided-decoding schema when `tool_choice` requires a call ("any"/"required": any of `tools`;
    a tool's name: that tool), else None (the model may answer in prose)."""
    if not tools or tool_choice in (None, "auto", "none"):
        return None
    chosen = list(tools) if tool_choice in ("any", "required") else [t for t in tools if t.name == tool_choice]
    return tool_call_schema(chosen) if chosen else None


def extract_offered_tools(prompt: str) -> list[dict[str, Any]]:
    """The tool schemas a rendered prompt offers (the last ``<tools>`` block), or []."""
    blocks = _TOOLS_BLOCK.findall(prompt)
    if not blocks:
        return []
    try:
        tools = json.loads(blocks[-1])
    except json.JSONDecodeError:
        return []
    return [t for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]


def render_tool_calls(calls: Sequence[ToolCall]) -> str:
    """Calls as the protocol's JSON object (how an assistant turn that called tools is rendered)."""
    payload = [{"name": c.name, "arguments": dict(c.arguments)} for c in calls]
    return json.dumps({"tool_calls": payload}, ensure_ascii=False, sort_keys=True)


def _json_objects(text: str) -> list[tuple[int, int, Any]]:
    decoder = json.JSONDecoder()
    found: list[tuple[int, int, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        found.append((index, end, value))
        index = text.find("{", end)
    return found


def _one_call(item: Any) -> ToolCall | InvalidToolCall:
    if not isinstance(item, dict):
        return InvalidToolCall(None, json.dumps(item), "a tool call must be a JSON object")
    name = item.get("name")
    arguments = item.get("arguments", item.get("args", {}))
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    if not isinstance(name, str) or not name:
        return InvalidToolCall(None, raw, "the tool call has no 'name' string")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return InvalidToolCall(name, raw, f"arguments are not valid JSON: {exc}")
    if not isinstance(arguments, dict):
        return InvalidToolCall(name, raw, "'arguments' must be a JSON object")
    return ToolCall(name=name, arguments=arguments)


def _strip_fences(text: str) -> str:
    return re.sub(r"```(?:json)?", "", text).strip()


def parse_tool_reply(text: str) -> ParsedReply:
    """Split a reply into prose and tool calls. Malformed calls become `InvalidToolCall`s."""
    for start, end, value in _json_objects(text):
        if isinstance(value, dict) and ("tool_calls" in value or {"name", "arguments"} <= value.keys()):
            items = value.get("tool_calls", [value])
            items = items if isinstance(items, list) else [items]
            calls = [_one_call(item) for item in items]
            content = _strip_fences(text[:start] + text[end:])
            return ParsedReply(
                content=content,
                tool_calls=tuple(c for c in calls if isinstance(c, ToolCall)),
                invalid_tool_calls=tuple(c for c in calls if isinstance(c, InvalidToolCall)),
            )
    if '"tool_calls"' in text:
        start = text.find("{")
        raw = text[start:] if start != -1 else text
        error = InvalidToolCall(None, raw.strip(), "the reply mentions tool_calls but is not valid JSON")
        return ParsedReply(content=_strip_fences(text[:start]) if start != -1 else "",
                           invalid_tool_calls=(error,))
    return ParsedReply(content=text)
