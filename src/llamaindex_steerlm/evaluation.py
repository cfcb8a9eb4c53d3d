"""LlamaIndex hooks for the SteerLM reward model: an attribute evaluator and the steering check.

    evaluator = SteerLMAttributeEvaluator(url="http://localhost:5555", attribute="helpfulness", threshold=3)
    result = evaluator.evaluate(query="Why is the sky blue?", response="Rayleigh scattering.")
    result.score, result.passing, result.feedback   # 4.0, True, "quality:4,...,verbosity:0"
    steering_check(SteerLM(model="Llama2-70B-SteerLM-Chat"), evaluator, "Why is the sky blue?").passed

The logic lives in `steerlm.steering`; this module only converts LlamaIndex objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.evaluation import BaseEvaluator, EvaluationResult
from llama_index.core.llms import LLM
from llama_index.core.prompts.mixin import PromptDictType

from steerlm.attributes import HELPSTEER
from steerlm.client.settings import ClientSettings
from steerlm.client_cache import ClientCache
from steerlm.errors import ConfigurationError
from steerlm.reward import DEFAULT_REWARD_URL, AsyncRewardModel, AttributeScores, RewardModel
from steerlm.steering import SteeringResult, acheck_steering, areply_scores, check_steering, reply_scores
from steerlm.transport.reward_model import RewardCodec

__all__ = ["SteerLMAttributeEvaluator", "asteering_check", "steering_check"]


class SteerLMAttributeEvaluator(BaseEvaluator):
    """Scores a response with a SteerLM reward model: `score` is `attribute` (0–4), `passing` is
    ``score >= threshold`` (None without a threshold), `feedback` the full label string. `scores` /
    `ascores` return every attribute with the raw floats. Extra keyword arguments go to `RewardModel`."""

    def __init__(self, model: str = "reward_model", url: str | list[str] = DEFAULT_REWARD_URL, *,
                 attribute: str = "helpfulness", threshold: int | None = None, **client_kwargs: Any) -> None:
        if attribute not in HELPSTEER.names:
            raise ConfigurationError(f"attribute must be one of {', '.join(HELPSTEER.names)}, got {attribute!r}")
        self.attribute, self.threshold = attribute, threshold
        self._options = ClientSettings.build(model, url, **{**client_kwargs, "signature": RewardCodec.name})
        # Async reward clients belong to one event loop: the cache closes them when their loop shuts down.
        self._clients: ClientCache[RewardModel, AsyncRewardModel] = ClientCache(
            RewardModel.from_settings, AsyncRewardModel.from_settings)

    def _get_prompts(self) -> PromptDictType:
        return {}

    def _update_prompts(self, prompts_dict: PromptDictType) -> None:
        return None

    def scores(self, query: str, response: str) -> AttributeScores:
        return reply_scores(self._clients.sync(self._options), query, response)

    async def ascores(self, query: str, response: str) -> AttributeScores:
        return await areply_scores(await self._clients.aio(self._options), query, response)

    def _result(self, query: str, response: str, contexts: Sequence[str] | None,
                scores: AttributeScores) -> EvaluationResult:
        value = scores[self.attribute]
        passing = None if self.threshold is None else value >= self.threshold
        return EvaluationResult(query=query, response=response, contexts=contexts, score=float(value),
                                passing=passing, feedback=scores.label)

    def evaluate(self, query: str | None = None, response: str | None = None,
                 contexts: Sequence[str] | None = None, **kwargs: Any) -> EvaluationResult:
        if query is None or response is None:
            raise ConfigurationError("SteerLMAttributeEvaluator needs query and response")
        return self._result(query, response, contexts, self.scores(query, response))

    async def aevaluate(self, query: str | None = None, response: str | None = None,
                        contexts: Sequence[str] | None = None, **kwargs: Any) -> EvaluationResult:
        if query is None or response is None:
            raise ConfigurationError("SteerLMAttributeEvaluator needs query and response")
        return self._result(query, response, contexts, await self.ascores(query, response))


def steering_check(llm: LLM, evaluator: SteerLMAttributeEvaluator, question: str, *, attribute: str = "verbosity",
                   low: int = 1, high: int = 4) -> SteeringResult:
    """Ask `question` with ``attribute=low`` and ``=high`` (per-call kwargs) and compare the scores."""
    return check_steering(lambda a: llm.complete(question, attributes=a).text, lambda r: evaluator.scores(question, r),
                          attribute=attribute, low=low, high=high)


async def asteering_check(llm: LLM, evaluator: SteerLMAttributeEvaluator, question: str, *,
                          attribute: str = "verbosity", low: int = 1, high: int = 4) -> SteeringResult:
    """Async `steering_check`."""

    async def generate(attributes: dict[str, int]) -> str:
        return (await llm.acomplete(question, attributes=attributes)).text

    async def score(reply: str) -> AttributeScores:
        return await evaluator.ascores(question, reply)

    return await acheck_steering(generate, score, attribute=attribute, low=low, high=high)
