"""Structured output without tools: the prompted JSON protocol and the strict check.

Where a server has guided decoding (`GenerationParams.guided_json`), it constrains the reply to the
schema. Everywhere, the adapters also add `json_instructions` to the system turn, so a model on a server
without guided decoding is asked for the same JSON (the fallback, like the tool protocol of
`steerlm.tools`)::

    Reply with only one JSON value that matches this JSON schema, and nothing else:
    <json_schema>
    {...the schema, canonical JSON...}
    </json_schema>

`check_strict` is what ``strict=True`` adds on top: the parsed reply is checked against the schema
(`steerlm.json_schema`), and a mismatch raises `StructuredOutputError` instead of returning output that
does not conform. On a guiding server the check always passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from steerlm.errors import StructuredOutputError
from steerlm.json_schema import schema_errors
from steerlm.profiles import ModelProfile
from steerlm.prompts import Message
from steerlm.requests import with_system_text

__all__ = ["check_strict", "extract_json_schema", "json_instructions", "with_json_instructions"]

_BLOCK = re.compile(r"<json_schema>\n(.*?)\n</json_schema>", re.DOTALL)
_SHOWN_ERRORS = 5


def json_instructions(schema: Mapping[str, Any]) -> str:
    """The system-turn text that asks for one JSON value matching `schema`."""
    text = json.dumps(schema, ensure_ascii=False, sort_keys=True)
    return ("Reply with only one JSON value that matches this JSON schema, and nothing else:\n"
            f"<json_schema>\n{text}\n</json_schema>")


def with_json_instructions(messages: Iterable[Message], schema: Mapping[str, Any] | str,
                           profile: str | ModelProfile) -> list[Message]:
    """The conversation with `json_instructions` for `schema` (a dict or its JSON text) in its system turn."""
    value = json.loads(schema) if isinstance(schema, str) else schema
    return with_system_text(messages, json_instructions(value), profile)


def extract_json_schema(prompt: str) -> dict[str, Any] | None:
    """The schema a rendered prompt asks for (its last ``<json_schema>`` block), else None."""
    blocks = _BLOCK.findall(prompt)
    if not blocks:
        return None
    try:
        schema = json.loads(blocks[-1])
    except json.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) else None


def check_strict(value: Any, schema: Mapping[str, Any], *, what: str = "the reply") -> Any:
    """`value` itself when it matches `schema`; else StructuredOutputError listing the mismatches."""
    errors = tuple(schema_errors(value, schema))
    if errors:
        shown = "; ".join(errors[:_SHOWN_ERRORS]) + (f"; and {len(errors) - _SHOWN_ERRORS} more"
                                                     if len(errors) > _SHOWN_ERRORS else "")
        raise StructuredOutputError(
            f"{what} does not match its JSON schema (strict=True): {shown}. The server has no guided decoding "
            "for this model, so the reply followed the prompted protocol; use a server/signature with guided "
            "decoding, or strict=False to get the reply unchecked", errors=errors, value=value)
    return value
