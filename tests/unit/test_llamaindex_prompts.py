"""Closed-QA templates, the automatic swap, and the LlamaIndex <-> neutral message conversion."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.prompts import PromptTemplate
from llama_index.core.prompts.default_prompt_selectors import (
    DEFAULT_REFINE_PROMPT_SEL,
    DEFAULT_TEXT_QA_PROMPT_SEL,
    DEFAULT_TREE_SUMMARIZE_PROMPT_SEL,
)
from llama_index.core.prompts.prompt_type import PromptType
from llama_index.core.tools import FunctionTool

from llamaindex_steerlm import CLOSED_QA_REFINE_TEMPLATE, CLOSED_QA_TEMPLATE, closed_qa_templates
from llamaindex_steerlm._convert import assistant_message, to_messages
from llamaindex_steerlm.prompts import REFINE_QUESTION, swap_closed_qa
from llamaindex_steerlm.tools import to_tool_choice, to_tool_specs
from steerlm import Message, PromptError
from steerlm.prompts import closed_qa_text
from steerlm.tools import ParsedReply, ToolCall, ToolSpec


def test_closed_qa_templates_helper() -> None:
    templates = closed_qa_templates()
    assert templates == {"text_qa_template": CLOSED_QA_TEMPLATE, "refine_template": CLOSED_QA_REFINE_TEMPLATE}
    assert CLOSED_QA_TEMPLATE.metadata["prompt_type"] == PromptType.QUESTION_ANSWER
    assert CLOSED_QA_REFINE_TEMPLATE.metadata["prompt_type"] == PromptType.REFINE
    assert set(CLOSED_QA_TEMPLATE.template_vars) == {"context_str", "query_str"}
    assert set(CLOSED_QA_REFINE_TEMPLATE.template_vars) == {"context_msg", "query_str", "existing_answer"}


def test_text_qa_swap_carries_bound_variables_and_formats_the_closed_qa_text() -> None:
    swapped = swap_closed_qa(DEFAULT_TEXT_QA_PROMPT_SEL.partial_format(query_str="Who {x}?"))
    messages = swapped.format_messages(context_str="ctx with {braces}")
    assert [(m.role, m.content) for m in messages] == [
        (MessageRole.USER, closed_qa_text("ctx with {braces}", "Who {x}?"))]


def test_refine_swap_renders_the_earlier_answer_as_an_assistant_turn() -> None:
    prompt = DEFAULT_REFINE_PROMPT_SEL.partial_format(query_str="Q?", existing_answer="A1")
    messages = swap_closed_qa(prompt).format_messages(context_msg="more")
    assert [(m.role.value, m.content) for m in messages] == [
        ("user", "Q?"), ("assistant", "A1"),
        ("user", closed_qa_text("more", REFINE_QUESTION.format(query_str="Q?")))]


@pytest.mark.parametrize(
    "prompt",
    [
        PromptTemplate("My own {context_str} {query_str}"),  # custom type: left alone
        DEFAULT_TREE_SUMMARIZE_PROMPT_SEL,
        CLOSED_QA_TEMPLATE.partial_format(query_str="q"),
    ],
)
def test_other_prompts_are_not_swapped(prompt: PromptTemplate) -> None:
    assert swap_closed_qa(prompt) is prompt


def test_to_messages_maps_roles_attributes_and_tool_calls() -> None:
    history = [
        ChatMessage(role="system", content="S"),
        ChatMessage(role="developer", content="D"),
        ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")]),
        ChatMessage(role="assistant", blocks=[TextBlock(text=""), ToolCallBlock(
            tool_call_id="c1", tool_name="f", tool_kwargs={"x": 1})], additional_kwargs={"attributes": {"humor": 1}}),
        ChatMessage(role="tool", content="R", additional_kwargs={"tool_call_id": "c1", "name": "f"}),
        ChatMessage(role="assistant", content="legacy",
                    additional_kwargs={"tool_calls": [ToolSelection(tool_id="c2", tool_name="g", tool_kwargs={})]}),
    ]
    assert to_messages(history) == [
        Message("system", "S"), Message("system", "D"), Message("user", "a\nb"),
        Message("assistant", "", attributes={"humor": 1}, tool_calls=(ToolCall("f", {"x": 1}, "c1"),)),
        Message("tool", "R", name="f", tool_call_id="c1"),
        Message("assistant", "legacy", tool_calls=(ToolCall("g", {}, "c2"),)),
    ]
    with pytest.raises(PromptError, match="ImageBlock"):
        to_messages([ChatMessage(role="user", blocks=[ImageBlock(url="http://127.0.0.1/x.png")])])


def test_assistant_message_records_attributes_and_calls() -> None:
    plain = assistant_message("hi", {"verbosity": 1})
    assert (plain.content, plain.additional_kwargs) == ("hi", {"attributes": {"verbosity": 1}})
    reply = ParsedReply(content="", tool_calls=(ToolCall("f", {"a": 1}, "c9"),))
    message = assistant_message('{"tool_calls": []}', {}, reply)
    blocks = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    assert [(b.tool_call_id, b.tool_name, b.tool_kwargs) for b in blocks] == [("c9", "f", {"a": 1})]
    assert message.content == ""


def test_tool_specs_and_choice() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    (spec,) = to_tool_specs([FunctionTool.from_defaults(fn=add)])
    assert spec.name == "add" and "Add two numbers." in spec.description
    assert spec.parameters["required"] == ["a", "b"]
    assert to_tool_specs([spec, {"name": "n", "description": "d"}])[1] == ToolSpec("n", "d")
    assert to_tool_choice(None, True) == "required"
    assert to_tool_choice("auto", False) == "auto"
    assert to_tool_choice({"type": "function", "function": {"name": "add"}}, False) == "add"
