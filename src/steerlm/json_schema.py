"""A small JSON Schema checker for strict structured output (no third-party validator needed).

`schema_errors(value, schema)` returns every mismatch as ``"<JSON pointer>: <what is wrong>"`` (empty:
the value conforms). It covers what structured-output schemas use (pydantic's ``model_json_schema``,
OpenAI strict schemas, LangChain tool schemas): ``type`` (a name or a list), ``enum``, ``const``,
``properties`` / ``required`` / ``additionalProperties``, ``items`` / ``prefixItems`` / ``minItems`` /
``maxItems``, ``anyOf`` / ``oneOf`` / ``allOf``, ``$ref`` to ``#/...`` (``$defs``, ``definitions``),
``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum``, ``minLength`` / ``maxLength`` and
``pattern``. Other keywords (``format``, ``if``/``then``...) are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["schema_errors"]

_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float)
                                                                         and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _TYPES.get(kind)
    return expected is None or isinstance(value, expected)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/") if ref.strip("#/") else ():
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _bounds(value: Any, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = schema.get(key)
            if not isinstance(bound, int | float):
                continue
            fails = {"minimum": value < bound, "maximum": value > bound, "exclusiveMinimum": value <= bound,
                     "exclusiveMaximum": value >= bound}[key]
            if fails:
                out.append(f"{path}: {value!r} violates {key} {bound!r}")
    if isinstance(value, str):
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            out.append(f"{path}: shorter than minLength {schema['minLength']}")
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            out.append(f"{path}: longer than maxLength {schema['maxLength']}")
        if isinstance(schema.get("pattern"), str) and re.search(schema["pattern"], value) is None:
            out.append(f"{path}: does not match pattern {schema['pattern']!r}")


def _object(value: dict[str, Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any],
            out: list[str]) -> None:
    properties = schema.get("properties") or {}
    out.extend(f"{path}: missing required property {name!r}" for name in schema.get("required") or ()
               if name not in value)
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], f"{path}/{name}", root, out)
        elif extra is False:
            out.append(f"{path}: property {name!r} is not allowed (additionalProperties is false)")
        elif isinstance(extra, Mapping):
            _check(item, extra, f"{path}/{name}", root, out)


def _array(value: list[Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any], out: list[str]) -> None:
    if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
        out.append(f"{path}: fewer than minItems {schema['minItems']} items")
    if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
        out.append(f"{path}: more than maxItems {schema['maxItems']} items")
    prefix = schema.get("prefixItems") or []
    items = schema.get("items")
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else items
        if isinstance(sub, Mapping):
            _check(item, sub, f"{path}/{index}", root, out)


def _check(value: Any, schema: Any, path: str, root: Mapping[str, Any], out: list[str]) -> None:
    if schema is True or not isinstance(schema, Mapping):
        return
    if isinstance(schema.get("$ref"), str):
        _check(value, _resolve(schema["$ref"], root), path, root, out)
    for sub in schema.get("allOf") or ():
        _check(value, sub, path, root, out)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            matches = sum(not schema_errors(value, o, root) for o in options)
            if matches == 0 or (key == "oneOf" and matches > 1):
                out.append(f"{path}: matches {matches} of the {key} options")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} is not the constant {schema['const']!r}")
    if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if isinstance(kinds, list) and kinds and not any(_is(value, k) for k in kinds):
        out.append(f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__}")
        return
    _bounds(value, schema, path, out)
    if isinstance(value, dict):
        _object(value, schema, path, root, out)
    elif isinstance(value, list):
        _array(value, schema, path, root, out)


def schema_errors(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> list[str]:
    """Every way `value` (parsed JSON) fails `schema`, as ``"<path>: <problem>"``; [] when it conforms."""
    out: list[str] = []
    _check(value, schema, "", schema if root is None else root, out)
    return [f"{'/' if not e.startswith('/') else ''}{e}" for e in out]
