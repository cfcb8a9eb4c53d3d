"""Tool calling and structured output for LangChain over the core's prompted JSON protocol.

The seed models have no native tool-call format. `bind_tools` stores the tools in OpenAI format (what
LangGraph and LangChain's agent factory inspect) plus a normalised ``tool_choice``; at call time
`offer_tools` appends `steerlm.tools.tool_instructions` to the system turn, and replies are parsed by
`steerlm.tools.parse_tool_reply` (malformed calls become ``invalid_tool_calls``; nothing raises).

``tool_choice``: ``None``/``"auto"`` (the model decides), ``"any"``/``"required"``/``True`` (must call
one), ``"none"``/``False`` (tools are not offered), a tool name or ``{"type": "function", "function":
{"name": ...}}`` (must call that tool — only that tool is offered, so the instruction is unambiguous).
A required call is also sent as a guided-decoding schema; a request with `guided_json` and no tools offered
gets the prompted JSON protocol's instructions (`steerlm.structured`), the fallback where the server cannot
guide. ``strict=True`` (`bind_tools`, `with_structured_output`) is sent as ``guided_strict``, and the parsed
output is checked against the schema (`check_tool_calls`; `SteerLMStructuredOutputError` on a mismatch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.json import parse_json_markdown
from langchain_core.utils.pydantic import is_basemodel_subclass

from langchain_steerlm._errors import SteerLMStructuredOutputError
from steerlm.errors import ConfigurationError, StructuredOutputError
from steerlm.params import GenerationParams
from steerlm.profiles import ModelProfile
from steerlm.prompts import Message
from steerlm.requests import with_tool_instructions
from steerlm.structured import check_strict, with_json_instructions
from steerlm.tools import ToolSpec, required_call_guide

__all__ = ["STRUCTURED_OUTPUT_METHODS", "ToolLike", "bind_tool_kwargs", "check_tool_calls", "forced_call_guide",
           "offer_tools", "structured_output", "structured_turns", "tool_specs"]

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


def bind_tool_kwargs(tools: Sequence[ToolLike], tool_choice: Any, strict: bool | None = None) -> dict[str, Any]:
    """The kwargs `bind_tools` binds: OpenAI-format ``tools``, a normalised ``tool_choice`` and, for
    ``strict``, ``strict`` (the calls are checked) and ``guided_strict`` (sent)."""
    formatted = [convert_to_openai_tool(t) for t in tools]  # type: ignore[arg-type]
    names = [t["function"]["name"] for t in formatted]
    bound = {"tools": formatted, "tool_choice": _normalize_choice(tool_choice, names)}
    return bound if strict is None else {**bound, "strict": strict, "guided_strict": strict}


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


def structured_turns(turns: list[Message], extra: Mapping[str, Any], params: GenerationParams,
                     profile: ModelProfile) -> tuple[list[Message], bool, GenerationParams]:
    """The conversation and params of a request: the bound tools offered (a required call also guided), or,
    with `guided_json` and no tools offered, the prompted JSON protocol's instructions; and whether tools were
    offered."""
    offered = False
    if extra:
        turns, offered = offer_tools(turns, extra, profile)
        guide = forced_call_guide(extra) if params.guided_json is None else None
        if guide is not None:  # a required call: guided decoding to the protocol where the server has it
            params = params.merge(guided_json=guide)
    if not offered and params.guided_json is not None:  # the prompted fallback where the server cannot guide
        turns = with_json_instructions(turns, params.guided_json, profile)
    return turns, offered, params


def check_tool_calls(extra: Mapping[str, Any], message: AIMessage) -> None:
    """``bind_tools(..., strict=True)``: raise SteerLMStructuredOutputError unless every tool call of `message`
    is well formed, names a bound tool and has arguments that match that tool's schema."""
    schemas = {spec.name: spec.parameters for spec in tool_specs(extra.get("tools"))}
    try:
        for bad in message.invalid_tool_calls:
            raise StructuredOutputError(f"the call to {bad.get('name')!r} is malformed (strict=True): "
                                        f"{bad.get('error')}", value=bad.get("args"))
        for call in message.tool_calls:
            if call["name"] not in schemas:
                raise StructuredOutputError(f"the reply calls {call['name']!r}, which is not a bound tool "
                                            f"(strict=True; bound: {sorted(schemas)})", value=call["args"])
            check_strict(call["args"], schemas[call["name"]], what=f"the arguments of the call to {call['name']!r}")
    except StructuredOutputError as exc:
        raise SteerLMStructuredOutputError(str(exc), errors=exc.errors, value=exc.value) from None


def _strict_check(schema: Mapping[str, Any], name: str | None) -> Runnable[AIMessage, AIMessage]:
    """The message unchanged when its JSON (the call to `name`, or the content) matches `schema`; else
    SteerLMStructuredOutputError (``strict=True``)."""

    def check(message: AIMessage) -> AIMessage:
        try:
            if name is None:
                check_strict(parse_json_markdown(message.text), schema)
                return message
            calls = [c for c in message.tool_calls if c["name"] == name]
            if not calls:
                raise StructuredOutputError(f"the reply made no call to {name!r} (strict=True)", value=message.text)
            check_strict(calls[0]["args"], schema, what=f"the arguments of the call to {name!r}")
        except StructuredOutputError as exc:
            raise SteerLMStructuredOutputError(str(exc), errors=exc.errors, value=exc.value) from None
        except ValueError as exc:  # not JSON at all
            raise SteerLMStructuredOutputError(f"the reply is not JSON (strict=True): {exc}",
                                               value=message.text) from None
        return message

    return RunnableLambda(check)


def _json_schema(schema: Mapping[str, Any] | type) -> dict[str, Any]:
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        return dict(schema.model_json_schema())  # type: ignore[attr-defined]
    if isinstance(schema, Mapping) and "properties" not in schema and "type" not in schema:
        return {"type": "object"}
    return convert_to_openai_tool(schema)["function"].get("parameters") or {"type": "object"}  # type: ignore[arg-type]


def structured_output(model: BaseChatModel, schema: Mapping[str, Any] | type, *, method: str,
                      include_raw: bool, strict: bool | None = None) -> Runnable[LanguageModelInput, Any]:
    """`with_structured_output` over guided decoding and the protocols.

    "function_calling" offers `schema` as the one tool the model must call (the call is guided where the
    server can guide) and parses that call; "json_schema" and "json_mode" send `schema` itself as the
    guided-decoding schema (OpenAI-compatible servers: ``response_format``; a schema-less dict gives
    JSON mode, ``{"type": "object"}``), ask for it by the prompted JSON protocol too (the fallback where the
    server cannot guide) and parse the reply's JSON. A pydantic `schema` gives instances, others dicts.
    ``strict=True`` sends ``guided_strict`` and checks the parsed JSON against the schema: output that
    does not match raises `SteerLMStructuredOutputError` (on a guiding server it always matches).
    ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}`` instead of raising.
    """
    if method not in STRUCTURED_OUTPUT_METHODS:
        raise ConfigurationError(f"method={method!r} is not supported; use one of {STRUCTURED_OUTPUT_METHODS}")
    pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"ls_structured_output_format": {"kwargs": {"method": method, "strict": strict}, "schema": schema}}
    strictness = {} if strict is None else {"guided_strict": strict}
    parser: Runnable[Any, Any]
    name: str | None = None
    if method in ("json_mode", "json_schema"):  # guided decoding to the schema where the server has it
        llm: Runnable[LanguageModelInput, Any] = model.bind(guided_json=_json_schema(schema), **strictness, **trace)
        parser = PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()  # type: ignore[arg-type]
    else:
        llm = model.bind_tools([schema], tool_choice="any", **strictness, **trace)  # type: ignore[list-item]
        name = convert_to_openai_tool(schema)["function"]["name"]  # type: ignore[arg-type]
        parser = (PydanticToolsParser(tools=[schema], first_tool_only=True) if pydantic  # type: ignore[list-item]
                  else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
    if strict:
        parser = _strict_check(_json_schema(schema), name) | parser
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")
