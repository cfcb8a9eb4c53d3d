"""Tool calling and structured output for LangChain over the core's prompted JSON protocol.

The seed models have no native tool-call format. `bind_tools` stores the tools in OpenAI format (what
LangGraph and LangChain's agent factory inspect) plus a normalised ``tool_choice``; at call time
`offer_tools` appends `steerlm.tools.tool_instructions` to the system turn, and replies are parsed by
`steerlm.tools.parse_tool_reply` (malformed calls become ``invalid_tool_calls``; nothing raises).

``tool_choice``: ``None``/``"auto"`` (the model decides), ``"any"``/``"required"``/``True`` (must call
one), ``"none"``/``False`` (tools are not offered), a tool name or ``{"type": "function", "function":
{"name": ...}}`` (must call that tool — only that tool is offered, so the instruction is unambiguous).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from steerlm.errors import ConfigurationError
from steerlm.profiles import ModelProfile
from steerlm.prompts import Message
from steerlm.requests import with_tool_instructions
from steerlm.tools import ToolSpec, required_call_guide

__all__ = ["STRUCTURED_OUTPUT_METHODS", "ToolLike", "bind_tool_kwargs", "forced_call_guide", "offer_tools",
           "structured_output", "tool_specs"]

ToolLike = Mapping[str, Any] | type | Callable[..., Any] | BaseTool
STRUCTURED_OUTPUT_METHODS = ("function_calling", "json_schema", "json_mode")


def _normalize_choice(tool_choice: Any, names: Sequence[str]) -> str | None:
    if tool_choice is None or tool_choice == "auto":
        return None
    if tool_choice is True or tool_choice in ("any", "required"):
        return "any"
    if tool_choice is False or tool_choice == "none":
        return "none"
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        tool_choice = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
    if isinstance(tool_choice, str) and tool_choice in names:
        return tool_choice
    raise ConfigurationError(
        f"tool_choice {tool_choice!r} is not supported; use 'auto', 'any', 'none' or one of the bound tool "
        f"names {list(names)}"
    )


def bind_tool_kwargs(tools: Sequence[ToolLike], tool_choice: Any) -> dict[str, Any]:
    """The kwargs `bind_tools` binds: OpenAI-format ``tools`` and a normalised ``tool_choice``."""
    formatted = [convert_to_openai_tool(t) for t in tools]  # type: ignore[arg-type]
    names = [t["function"]["name"] for t in formatted]
    return {"tools": formatted, "tool_choice": _normalize_choice(tool_choice, names)}


def tool_specs(tools: Sequence[ToolLike] | None) -> list[ToolSpec]:
    """Bound tools (OpenAI format, or anything `convert_to_openai_tool` takes) as ToolSpecs."""
    specs = []
    for tool in tools or ():
        function = convert_to_openai_tool(tool)["function"]  # type: ignore[arg-type]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        specs.append(ToolSpec(name=function["name"], description=function.get("description") or "",
                              parameters=parameters))
    return specs


def offer_tools(
    messages: list[Message], extra: Mapping[str, Any], profile: ModelProfile
) -> tuple[list[Message], bool]:
    """The conversation with the bound tools offered in its system turn, and whether any were offered."""
    specs = tool_specs(extra.get("tools"))
    choice = _normalize_choice(extra.get("tool_choice"), [s.name for s in specs])
    if choice not in (None, "any", "none"):
        specs = [s for s in specs if s.name == choice]
    if not specs or choice == "none":
        return messages, False
    return with_tool_instructions(messages, specs, choice, profile), True


def forced_call_guide(extra: Mapping[str, Any]) -> dict[str, Any] | None:
    """The guided-decoding schema of a required call (``tool_choice`` "any" or a tool's name), else None."""
    specs = tool_specs(extra.get("tools"))
    return required_call_guide(specs, _normalize_choice(extra.get("tool_choice"), [s.name for s in specs]))


def _json_schema(schema: Mapping[str, Any] | type) -> dict[str, Any]:
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        return dict(schema.model_json_schema())  # type: ignore[attr-defined]
    if isinstance(schema, Mapping) and "properties" not in schema and "type" not in schema:
        return {"type": "object"}
    return convert_to_openai_tool(schema)["function"].get("parameters") or {"type": "object"}  # type: ignore[arg-type]


def structured_output(model: BaseChatModel, schema: Mapping[str, Any] | type, *, method: str,
                      include_raw: bool) -> Runnable[LanguageModelInput, Any]:
    """`with_structured_output` over the protocol.

    "function_calling" and "json_schema" offer `schema` as the one tool the model must call and parse
    that call; "json_mode" offers nothing and parses the reply's JSON object (the prompt must ask for
    JSON and describe it). A pydantic `schema` gives instances, others dicts. The call (`forced_call_guide`)
    or the JSON object is also sent as a guided-decoding schema, which servers with guided decoding
    (Triton's vLLM backend) enforce and others ignore: there the prompted protocol is the fallback.
    ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}`` instead of raising.
    """
    if method not in STRUCTURED_OUTPUT_METHODS:
        raise ConfigurationError(f"method={method!r} is not supported; use one of {STRUCTURED_OUTPUT_METHODS}")
    pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"ls_structured_output_format": {"kwargs": {"method": method}, "schema": schema}}
    parser: Runnable[Any, Any]
    if method == "json_mode":  # guided decoding to the schema where the server has it
        llm: Runnable[LanguageModelInput, Any] = model.bind(guided_json=_json_schema(schema), **trace)
        parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()  # type: ignore[arg-type]
    else:
        llm = model.bind_tools([schema], tool_choice="any", **trace)  # type: ignore[list-item]
        name = convert_to_openai_tool(schema)["function"]["name"]  # type: ignore[arg-type]
        parser = (PydanticToolsParser(tools=[schema], first_tool_only=True) if pydantic  # type: ignore[list-item]
                  else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")
