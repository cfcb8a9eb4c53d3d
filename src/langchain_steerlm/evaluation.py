"""LangChain hooks for the SteerLM reward model: a scoring runnable and the steering check.

    scorer = SteerLMRewardScorer(url="http://localhost:5555")
    scorer.invoke({"input": "Why is the sky blue?", "output": "Rayleigh scattering."})
    # {"quality": 4, ..., "verbosity": 0, "raw": {...}, "label": "quality:4,...,verbosity:0"}
    steering_check(ChatSteerLM(model="Llama2-70B-SteerLM-Chat"), scorer, "Why is the sky blue?").passed

The logic lives in `steerlm.steering`; this module only converts LangChain inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_steerlm._convert import to_core_messages
from steerlm.client.memo import cached_settings
from steerlm.client.settings import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, ClientSettings
from steerlm.client_cache import ClientCache
from steerlm.errors import ConfigurationError
from steerlm.profiles import get_profile
from steerlm.reward import DEFAULT_REWARD_URL, REWARD_PROFILE, AsyncRewardModel, AttributeScores, RewardModel
from steerlm.steering import SteeringResult, acheck_steering, areply_scores, check_steering, reply_scores
from steerlm.transport.reward_model import RewardCodec

__all__ = ["SteerLMRewardScorer", "asteering_check", "steering_check"]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(getattr(value, "content", value))


def _split(value: Any) -> tuple[Any, str]:
    """(conversation, reply) from ``{"input", "output"}`` or a message list ending with the reply."""
    if isinstance(value, Mapping) and "input" in value and "output" in value:
        conversation = value["input"]
    elif isinstance(value, Sequence) and value and isinstance(value[-1], BaseMessage):
        conversation, value = list(value[:-1]), {"output": value[-1]}
    else:
        raise ConfigurationError("score {'input': question or messages, 'output': reply} or a message list "
                                 "ending with the reply")
    if not isinstance(conversation, str):
        conversation = to_core_messages(list(conversation), get_profile(REWARD_PROFILE))
    return conversation, _text(value["output"])


def as_dict(scores: AttributeScores) -> dict[str, Any]:
    return {**scores.attributes, "raw": dict(scores.raw), "label": scores.label}


class SteerLMRewardScorer(RunnableSerializable[Any, dict[str, Any]]):
    """Runnable scoring a reply's 9 HelpSteer attributes with a SteerLM reward model (NeMo-Aligner)."""

    model: str = Field(default="reward_model", description="Triton model name of the reward model.")
    url: str | list[str] = Field(default=DEFAULT_REWARD_URL, description="Server URL (HTTP; a list = replicas).")
    timeout: float = Field(default=DEFAULT_TIMEOUT, description="Per-request timeout, seconds.")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, description="Retries of retryable server errors.")
    model_config = ConfigDict(arbitrary_types_allowed=True)
    # Async reward clients belong to one event loop: the cache closes them when their loop shuts down.
    _clients: ClientCache[RewardModel, AsyncRewardModel] = PrivateAttr(
        default_factory=lambda: ClientCache(RewardModel.from_settings, AsyncRewardModel.from_settings))

    def _options(self) -> ClientSettings:
        return cached_settings(self.model, self.url, timeout=self.timeout, max_retries=self.max_retries,
                               signature=RewardCodec.name)

    def scores(self, conversation: Any, reply: str) -> AttributeScores:
        return reply_scores(self._clients.sync(self._options()), conversation, reply)

    async def ascores(self, conversation: Any, reply: str) -> AttributeScores:
        return await areply_scores(await self._clients.aio(self._options()), conversation, reply)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return self._call_with_config(lambda x: as_dict(self.scores(*_split(x))), input, config)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        async def run(x: Any) -> dict[str, Any]:
            return as_dict(await self.ascores(*_split(x)))

        return await self._acall_with_config(run, input, config)


def steering_check(chat: BaseChatModel, scorer: SteerLMRewardScorer, question: str, *, attribute: str = "verbosity",
                   low: int = 1, high: int = 4) -> SteeringResult:
    """Ask `question` with ``attribute=low`` and ``=high`` (per-call kwargs) and compare the scores."""
    return check_steering(lambda a: _text(chat.invoke(question, attributes=a)), lambda r: scorer.scores(question, r),
                          attribute=attribute, low=low, high=high)


async def asteering_check(chat: BaseChatModel, scorer: SteerLMRewardScorer, question: str, *,
                          attribute: str = "verbosity", low: int = 1, high: int = 4) -> SteeringResult:
    """Async `steering_check`."""

    async def generate(attributes: dict[str, int]) -> str:
        return _text(await chat.ainvoke(question, attributes=attributes))

    async def score(reply: str) -> AttributeScores:
        return await scorer.ascores(question, reply)

    return await acheck_steering(generate, score, attribute=attribute, low=low, high=high)
