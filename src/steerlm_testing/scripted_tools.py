"""The scripted model's generic reply to prompts that offer tools (``steerlm.tools`` protocol).

* Tools offered and the last user turn is not a tool result: call the FIRST offered tool with arguments
  built from its JSON schema (required properties only): strings are words of the last user turn, taken
  from its end (``"weather in Paris"`` gives ``"Paris"``, then ``"in"``, ...), integers 3, numbers 1.5,
  booleans true, enums/consts their first value, arrays one such item, objects built recursively.
* A prompt asking for JSON by the prompted protocol (`steerlm.structured`'s ``<json_schema>`` block), or a
  request with a guided-decoding schema: a JSON instance of that schema (`schema_reply`).
* The last user turn starts with the tool-result prefix: ``Final answer: <first line after the prefix
  line>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from itertools import cycle
from typing import Any

from steerlm_testing.directives import strip_directives

__all__ = ["build_arguments", "last_user_turn", "prompted_schema", "schema_reply", "tool_reply"]

_USER_START = "<extra_id_1>User\n"
_TURN_END = "\n<extra_id_1>"
_WORD = re.compile(r"[^\W_]+")


def last_user_turn(prompt: str) -> str:
    """The text of the last ``<extra_id_1>User`` turn (the whole prompt when it has no turns)."""
    start = prompt.rfind(_USER_START)
    text = prompt if start == -1 else prompt[start + len(_USER_START):]
    end = text.find(_TURN_END)
    return text if end == -1 else text[:end]


def _ref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """`schema` with its ``$ref`` (``#/$defs/...``) resolved and its ``allOf`` parts merged in."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        node: Any = root
        for key in ref[1:].strip("/").split("/") if ref[1:].strip("/") else ():
            node = node.get(key) if isinstance(node, Mapping) else None
        merged = {**(node if isinstance(node, Mapping) else {}), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _ref(merged, root)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for raw in parts:
            part: Mapping[str, Any] = _ref(raw, root) if isinstance(raw, Mapping) else {}
            merged["properties"] = {**(part.get("properties") or {}), **(merged.get("properties") or {})}
            merged["required"] = [*(part.get("required") or ()), *(merged.get("required") or ())]
            merged = {**part, **merged}
        return merged
    return schema


def _number(schema: Mapping[str, Any], default: float) -> float:
    low = next((schema[k] for k in ("minimum", "exclusiveMinimum") if isinstance(schema.get(k), int | float)), None)
    high = next((schema[k] for k in ("maximum", "exclusiveMaximum") if isinstance(schema.get(k), int | float)), None)
    value = default
    if low is not None and value <= low:
        value = low + (1 if "exclusiveMinimum" in schema else 0)
    if high is not None and value >= high:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    return value


def _string(schema: Mapping[str, Any], words: Iterator[str]) -> str:
    text = next(words)
    while len(text) < int(schema.get("minLength") or 0):
        text += " " + next(words)
    return text[: schema["maxLength"]] if isinstance(schema.get("maxLength"), int) else text


def _schema_value(schema: Mapping[str, Any], words: Iterator[str], root: Mapping[str, Any] | None = None) -> Any:
    root = schema if root is None else root
    schema = _ref(schema, root)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            usable = [o for o in options if _ref(o, root).get("type") != "null"] or options
            return _schema_value(usable[0], words, root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "integer":
        return int(_number(schema, 3))
    if kind == "number":
        return _number(schema, 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        items = schema.get("items")
        count = max(1, int(schema.get("minItems") or 0))
        return [_schema_value(items if isinstance(items, Mapping) else {}, words, root) for _ in range(count)]
    if kind == "object":
        return build_arguments(schema, words, root)
    return _string(schema, words)


def build_arguments(schema: Mapping[str, Any] | None, words: Iterator[str],
                    root: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Deterministic arguments for the required properties of an object schema."""
    if not isinstance(schema, Mapping):
        return {}
    root = schema if root is None else root
    schema = _ref(schema, root)
    properties = schema.get("properties") or {}
    required = [name for name in schema.get("required") or () if name in properties]
    return {name: _schema_value(properties[name], words, root) for name in required}


def schema_reply(prompt: str, schema: Mapping[str, Any]) -> str:
    """What guided decoding to `schema` makes the model say: a JSON instance of it (required properties
    only; strings are words of the last user turn, from its end; ``$ref``/``$defs``, ``allOf``, bounds,
    lengths and ``minItems`` honoured), ``<`` escaped as ``\\u003c``."""
    words = _WORD.findall(strip_directives(last_user_turn(prompt)))[::-1] or ["text"]
    value = _schema_value(schema, cycle(words))
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def prompted_schema(prompt: str) -> dict[str, Any] | None:
    """The JSON schema a prompt asks for by the prompted protocol (``<json_schema>`` block), else None."""
    if "<json_schema>" not in prompt:
        return None
    from steerlm.structured import extract_json_schema

    return extract_json_schema(prompt)


def _tool_result(turn: str, prefix: str) -> str:
    lines = turn.split("\n")
    return lines[1] if len(lines) > 1 else lines[0][len(prefix):].lstrip(" :")


def tool_reply(prompt: str) -> tuple[str, bool] | None:
    """The reply for a prompt that offers tools, or None when it offers none.

    Returns ``(text, is_json)``: a tool-call JSON object (``<`` escaped as ``\\u003c``) or plain text.
    """
    try:
        from steerlm.tools import TOOL_RESULT_PREFIX, extract_offered_tools
    except ImportError:  # the core tool protocol is not installed
        return None
    tools = extract_offered_tools(prompt)
    if not tools:
        return None
    turn = strip_directives(last_user_turn(prompt))
    if turn.startswith(TOOL_RESULT_PREFIX):
        return "Final answer: " + _tool_result(turn, TOOL_RESULT_PREFIX), False
    words = _WORD.findall(turn)[::-1] or ["text"]
    arguments = build_arguments(tools[0].get("parameters"), cycle(words))
    call = {"tool_calls": [{"name": tools[0]["name"], "arguments": arguments}]}
    return json.dumps(call, ensure_ascii=False).replace("<", "\\u003c"), True
