"""Closed-QA templates for query engines (REFERENCE §2.3) and the automatic swap `SteerLM` applies.

* ``text_qa`` (``QUESTION_ANSWER``: ``context_str``, ``query_str``): one user turn in the model's
  closed-QA-with-context wording, ``steerlm.prompts.closed_qa_text(context_str, query_str)`` — the same
  text ``steerlm.format_prompt(..., context=...)`` renders.
* ``refine`` (``REFINE``: ``query_str``, ``existing_answer``, ``context_msg``): the earlier answer is
  the model's own turn, so it is rendered as one: user ``query_str``, assistant ``existing_answer``
  (with its label line on SteerLM models), then a closed-QA user turn whose context is ``context_msg``
  and whose question asks to refine that answer (or repeat it when the new context does not help).

`closed_qa_templates()` returns them as ``text_qa_template=`` / ``refine_template=`` keyword arguments
for ``as_query_engine`` / ``get_response_synthesizer``. `swap_closed_qa` is what `SteerLM.predict`,
``stream``, ``apredict`` and ``astream`` do with any prompt tagged QUESTION_ANSWER or REFINE.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.prompts import BasePromptTemplate, ChatPromptTemplate
from llama_index.core.prompts.prompt_type import PromptType

from steerlm.prompts import closed_qa_text

__all__ = [
    "CLOSED_QA_REFINE_TEMPLATE",
    "CLOSED_QA_TEMPLATE",
    "REFINE_QUESTION",
    "closed_qa_templates",
    "swap_closed_qa",
]

_MARK = "steerlm_closed_qa"
REFINE_QUESTION = (
    "Refine your previous answer to the question below using this new context. If the new context "
    "does not help, repeat your previous answer unchanged. Question: {query_str}"
)

CLOSED_QA_TEMPLATE = ChatPromptTemplate(
    message_templates=[
        ChatMessage(role=MessageRole.USER, content=closed_qa_text("{context_str}", "{query_str}")),
    ],
    prompt_type=PromptType.QUESTION_ANSWER,
    metadata={_MARK: True},
)
CLOSED_QA_REFINE_TEMPLATE = ChatPromptTemplate(
    message_templates=[
        ChatMessage(role=MessageRole.USER, content="{query_str}"),
        ChatMessage(role=MessageRole.ASSISTANT, content="{existing_answer}"),
        ChatMessage(role=MessageRole.USER, content=closed_qa_text("{context_msg}", REFINE_QUESTION)),
    ],
    prompt_type=PromptType.REFINE,
    metadata={_MARK: True},
)
_BY_TYPE = {PromptType.QUESTION_ANSWER: CLOSED_QA_TEMPLATE, PromptType.REFINE: CLOSED_QA_REFINE_TEMPLATE}


def closed_qa_templates() -> dict[str, BasePromptTemplate]:
    """``{"text_qa_template": ..., "refine_template": ...}`` for ``index.as_query_engine(**...)``."""
    return {"text_qa_template": CLOSED_QA_TEMPLATE, "refine_template": CLOSED_QA_REFINE_TEMPLATE}


def swap_closed_qa(prompt: BasePromptTemplate) -> BasePromptTemplate:
    """The closed-QA template for a QUESTION_ANSWER / REFINE prompt, else `prompt` unchanged.

    Variables already bound on `prompt` (``partial_format``: ``query_str``, ``existing_answer``) carry
    over; prompts of other types, and templates that are already closed-QA, are returned as they are.
    """
    metadata: dict[str, Any] = prompt.metadata or {}
    try:
        target = _BY_TYPE.get(PromptType(metadata.get("prompt_type")))
    except ValueError:
        return prompt
    if target is None or metadata.get(_MARK):
        return prompt
    bound = {k: v for k, v in prompt.kwargs.items() if k in target.template_vars}
    return target.partial_format(**bound) if bound else target
