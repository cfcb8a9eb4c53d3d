"""FunctionCallingLLM glue over the core's prompted JSON tool protocol (`steerlm.tools`).

LlamaIndex tools become `ToolSpec`s (name, description, JSON schema of the arguments); the core renders
them into the system turn and parses the reply. This module only converts between the two worlds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, ToolCallBlock
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools.types import BaseTool

from steerlm.errors import ConfigurationError
from steerlm.tools import ToolSpec

__all__ = ["prepare_tool_chat", "single_tool_call", "to_tool_choice", "to_tool_specs", "tool_selections"]


def to_tool_specs(tools: Sequence[BaseTool | ToolSpec | Mapping[str, Any]]) -> list[ToolSpec]:
    """LlamaIndex tools (or ready `ToolSpec`s / ``{"name", "description", "parameters"}`` dicts)."""
    specs: list[ToolSpec] = []
    for tool in tools:
        if isinstance(tool, ToolSpec):
            specs.append(tool)
        elif isinstance(tool, Mapping):
            specs.append(ToolSpec(name=str(tool["name"]), description=str(tool.get("description", "")),
                                  parameters=dict(tool.get("parameters") or {"type": "object", "properties": {}})))
        elif isinstance(tool, BaseTool):
            meta = tool.metadata
            specs.append(ToolSpec(name=meta.get_name(), description=meta.description,
                                  parameters=meta.get_parameters_dict()))
        else:
            raise ConfigurationError(f"cannot offer {tool!r} as a tool: pass LlamaIndex tools (BaseTool)")
    return specs


def to_tool_choice(tool_choice: str | Mapping[str, Any] | None, tool_required: bool) -> str | None:
    """The core's tool_choice: None/"auto", "none", "required" or a tool name (OpenAI dict form too)."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        tool_choice = str(name) if name else None
    if tool_choice in (None, "auto") and tool_required:
        return "required"
    return tool_choice


def prepare_tool_chat(
    tools: Sequence[BaseTool],
    user_msg: str | ChatMessage | None,
    chat_history: Sequence[ChatMessage] | None,
    tool_choice: str | Mapping[str, Any] | None,
    tool_required: bool,
) -> dict[str, Any]:
    """``chat()`` keyword arguments: the conversation plus ``tools`` and ``tool_choice``."""
    messages = list(chat_history or [])
    if isinstance(user_msg, str):
        messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
    elif user_msg is not None:
        messages.append(user_msg)
    return {"messages": messages, "tools": to_tool_specs(tools),
            "tool_choice": to_tool_choice(tool_choice, tool_required)}


def tool_selections(response: ChatResponse, error_on_no_tool_call: bool) -> list[ToolSelection]:
    """The tool calls of a response as `ToolSelection`s; raises ValueError when none and asked to."""
    selections = [
        ToolSelection(tool_id=block.tool_call_id or "", tool_name=block.tool_name,
                      tool_kwargs=block.tool_kwargs if isinstance(block.tool_kwargs, dict) else {})
        for block in response.message.blocks if isinstance(block, ToolCallBlock)
    ]
    if not selections and error_on_no_tool_call:
        invalid = response.message.additional_kwargs.get("invalid_tool_calls")
        detail = f"; unparsable calls: {invalid}" if invalid else ""
        raise ValueError(f"Expected at least one tool call, but got 0 tool calls{detail}.")
    return selections


def single_tool_call(response: ChatResponse) -> ChatResponse:
    """Keep only the first tool call (``allow_parallel_tool_calls=False``)."""
    blocks = response.message.blocks
    calls = [b for b in blocks if isinstance(b, ToolCallBlock)]
    if len(calls) > 1:
        response.message.blocks = [b for b in blocks if not isinstance(b, ToolCallBlock) or b is calls[0]]
    return response
