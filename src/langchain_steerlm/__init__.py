"""LangChain integration of steerlm: `ChatSteerLM` (chat model) and `SteerLM` (string LLM).

Errors are steerlm's own exception classes that also derive from langchain-core's typed `ModelError`s
(`SteerLMTimeoutError` is both a `steerlm.RequestTimeoutError` and a `ModelTimeoutError`, ...).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from langchain_steerlm._client import aclose_clients, close_clients
from langchain_steerlm._errors import (
    SteerLMAPIError,
    SteerLMAuthenticationError,
    SteerLMConnectionError,
    SteerLMContextOverflowError,
    SteerLMInvalidRequestError,
    SteerLMModelNotFoundError,
    SteerLMPermissionDeniedError,
    SteerLMRateLimitError,
    SteerLMServerError,
    SteerLMStreamInterruptedError,
    SteerLMStructuredOutputError,
    SteerLMTimeoutError,
    to_langchain_error,
)
from langchain_steerlm._params import ATTRIBUTES_KEY
from langchain_steerlm.chat_models import ChatSteerLM

if TYPE_CHECKING:
    from langchain_steerlm.llms import SteerLM
    from langchain_steerlm.rag import closed_qa_chain, format_documents, with_context

# Imported on first use: the string LLM and the RAG helpers (which load yaml through langchain's prompts).
_LAZY = {"SteerLM": "langchain_steerlm.llms", "closed_qa_chain": "langchain_steerlm.rag",
         "format_documents": "langchain_steerlm.rag", "with_context": "langchain_steerlm.rag"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_steerlm' has no attribute {name!r}")
    return getattr(import_module(module), name)

__all__ = [
    "ATTRIBUTES_KEY",
    "ChatSteerLM",
    "SteerLM",
    "SteerLMAPIError",
    "SteerLMAuthenticationError",
    "SteerLMConnectionError",
    "SteerLMContextOverflowError",
    "SteerLMInvalidRequestError",
    "SteerLMModelNotFoundError",
    "SteerLMPermissionDeniedError",
    "SteerLMRateLimitError",
    "SteerLMServerError",
    "SteerLMStreamInterruptedError",
    "SteerLMStructuredOutputError",
    "SteerLMTimeoutError",
    "aclose_clients",
    "close_clients",
    "closed_qa_chain",
    "format_documents",
    "to_langchain_error",
    "with_context",
]
