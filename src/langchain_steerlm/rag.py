"""Closed-QA retrieval chains: retrieved Documents become the model's own closed-QA context template.

``invoke(question, context=...)`` renders NV-Llama2-70B-RLHF-Chat's closed-QA wording (seeds/002)
in the last user turn — the instruction, ``Context: {context}``, then the question — for every profile.
These helpers put retrieval in front of it, so a RAG chain needs no hand-written prompt::

    chain = closed_qa_chain(vector_store.as_retriever(), ChatSteerLM(...))
    chain.invoke("What does Triton serve?")          # -> AIMessage (or str for SteerLM)

`with_context(llm)` is the last step on its own: it takes ``{"question": str, "context": str |
list[Document]}`` and calls the model with the context bound. Both stream (``chain.stream(...)``) and
run async, and the model's callbacks and tracing stay attached to the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel

from steerlm.errors import ConfigurationError

__all__ = ["DOCUMENT_SEPARATOR", "closed_qa_chain", "format_documents", "with_context"]

DOCUMENT_SEPARATOR = "\n\n"
DocumentFormatter = Callable[[Sequence[Document]], str]


def format_documents(documents: Sequence[Document] | str, separator: str = DOCUMENT_SEPARATOR) -> str:
    """The context text: each document's ``page_content``, joined by a blank line (strings pass as is)."""
    if isinstance(documents, str):
        return documents
    return separator.join(d.page_content.strip() for d in documents)


def _question(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("question"), str):
        return str(value["question"])
    raise ConfigurationError(f"the question must be a string or a dict with a 'question' string, got {value!r}")


def with_context(llm: Runnable[Any, Any], *, format_docs: DocumentFormatter = format_documents) -> Runnable[Any, Any]:
    """A runnable taking ``{"question", "context"}`` that calls `llm` with ``context=`` bound.

    `context` may be a string or retrieved Documents (formatted with `format_docs`).
    """

    def route(inputs: Mapping[str, Any]) -> Runnable[Any, Any]:
        context = inputs.get("context")
        if context is None:
            raise ConfigurationError("with_context needs a 'context' key (a string or a list of Documents)")
        text = context if isinstance(context, str) else format_docs(context)
        question = _question(inputs)
        # Returning a runnable makes RunnableLambda invoke / stream it with the same config.
        return RunnableLambda(lambda _: question, name="question") | llm.bind(context=text)

    return RunnableLambda(route, name="with_context")


def closed_qa_chain(retriever: Runnable[str, Sequence[Document]], llm: Runnable[Any, Any], *,
                    format_docs: DocumentFormatter = format_documents) -> Runnable[Any, Any]:
    """question -> retriever -> `llm` answering from the retrieved documents (closed-QA template).

    The input is the question string (or ``{"question": ...}``); the output is the model's (an
    AIMessage for ChatSteerLM, a string for SteerLM).
    """
    question = RunnableLambda(_question, name="question")
    gather = RunnableParallel(question=question, context=question | retriever)
    return (gather | with_context(llm, format_docs=format_docs)).with_config(
        run_name="closed_qa_chain"
    )
