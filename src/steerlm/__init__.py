"""steerlm — NVIDIA SteerLM and NeMo-aligned chat models on Triton, for LangChain and LlamaIndex.

The core is framework-neutral: profiles and attributes, byte-exact prompt rendering, output clean-up
and the Triton client. Heavy modules (the client, tritonclient) load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from steerlm.attributes import HELPSTEER, HELPSTEER2, OASST, AttributeSet, encode_labels, parse_labels
from steerlm.errors import (
    AuthenticationError,
    ConfigurationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    PromptError,
    RequestTimeoutError,
    ServerOverloadedError,
    ServerUnavailableError,
    SteerLMError,
    StreamInterruptedError,
    StructuredOutputError,
    TritonError,
)
from steerlm.output import StopMatcher, clean_completion, strip_echo
from steerlm.params import GenerationParams
from steerlm.profiles import ModelProfile, find_profile, get_profile, list_profiles
from steerlm.prompts import Message, format_prompt, neutralize, render
from steerlm.usage import TokenUsage

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, CallOptions, ClientSettings, Completion, SteerLMClient, StreamChunk
    from steerlm.reward import AsyncRewardModel, RewardModel
    from steerlm.transport.memory import MemoryRequest, MemoryTransport

__version__ = "0.1.0"

_LAZY = {
    "SteerLMClient": "steerlm.client",
    "AsyncSteerLMClient": "steerlm.client",
    "Completion": "steerlm.client",
    "StreamChunk": "steerlm.client",
    "ClientSettings": "steerlm.client",
    "CallOptions": "steerlm.client",
    "MemoryTransport": "steerlm.transport.memory",
    "MemoryRequest": "steerlm.transport.memory",
    "RewardModel": "steerlm.reward",
    "AsyncRewardModel": "steerlm.reward",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'steerlm' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "HELPSTEER",
    "HELPSTEER2",
    "OASST",
    "AsyncRewardModel",
    "AsyncSteerLMClient",
    "AttributeSet",
    "AuthenticationError",
    "CallOptions",
    "ClientSettings",
    "Completion",
    "ConfigurationError",
    "ContextWindowExceededError",
    "GenerationParams",
    "InvalidRequestError",
    "MemoryRequest",
    "MemoryTransport",
    "Message",
    "ModelNotFoundError",
    "ModelProfile",
    "PromptError",
    "RequestTimeoutError",
    "RewardModel",
    "ServerOverloadedError",
    "ServerUnavailableError",
    "SteerLMClient",
    "SteerLMError",
    "StopMatcher",
    "StreamChunk",
    "StreamInterruptedError",
    "StructuredOutputError",
    "TokenUsage",
    "TritonError",
    "clean_completion",
    "encode_labels",
    "find_profile",
    "format_prompt",
    "get_profile",
    "list_profiles",
    "neutralize",
    "parse_labels",
    "render",
    "strip_echo",
]
