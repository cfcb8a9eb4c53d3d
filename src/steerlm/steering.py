"""Framework-neutral evaluation with the reward model: score one reply, and the steering check.

* `reply_scores` / `areply_scores`: the attribute scores of `reply` as the assistant's answer to a
  conversation (a question string or messages; the reply is appended as the last assistant turn);
* `check_steering` / `acheck_steering`: "did ``verbosity=1`` give a less verbose answer than
  ``verbosity=4``?" — generate one answer per setting (through any callable, e.g. a LangChain or
  LlamaIndex model), score both, and pass when the **raw** score of the attribute rises with the
  setting (raw, because rounding to 0–4 hides small differences).

The LangChain and LlamaIndex hooks (`langchain_steerlm.evaluation`, `llamaindex_steerlm.evaluation`)
are thin wrappers over these functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from steerlm.attributes import HELPSTEER
from steerlm.errors import ConfigurationError
from steerlm.prompts import Message, to_messages
from steerlm.reward import AsyncRewardModel, AttributeScores, RewardModel

__all__ = [
    "SteeringResult",
    "acheck_steering",
    "areply_scores",
    "check_steering",
    "reply_conversation",
    "reply_scores",
]

Conversation = str | Iterable[Message | Mapping[str, Any]]


def reply_conversation(conversation: Conversation, reply: str) -> list[Message]:
    """The conversation (a question string or messages) with `reply` as the last assistant turn."""
    messages = [Message("user", conversation)] if isinstance(conversation, str) else to_messages(conversation)
    return [*messages, Message("assistant", reply)]


def reply_scores(model: RewardModel, conversation: Conversation, reply: str) -> AttributeScores:
    """The scores of `reply` to `conversation`."""
    return model.score(reply_conversation(conversation, reply))[-1]


async def areply_scores(model: AsyncRewardModel, conversation: Conversation, reply: str) -> AttributeScores:
    """Async `reply_scores`."""
    return (await model.score(reply_conversation(conversation, reply)))[-1]


@dataclass(frozen=True)
class SteeringResult:
    """The outcome of one steering check (`low` < `high` settings of `attribute`)."""

    attribute: str
    low: int
    high: int
    low_reply: str
    high_reply: str
    low_scores: AttributeScores
    high_scores: AttributeScores

    @property
    def passed(self) -> bool:
        """True when the reply made with `high` scores strictly higher (raw) on `attribute`."""
        return self.low_scores.raw[self.attribute] < self.high_scores.raw[self.attribute]

    def describe(self) -> str:
        name, lo, hi = self.attribute, self.low_scores, self.high_scores
        verdict = "steered" if self.passed else "NOT steered"
        return (f"{name}={self.low} -> {name} {lo.raw[name]:.2f} (label {lo[name]}); {name}={self.high} -> "
                f"{name} {hi.raw[name]:.2f} (label {hi[name]}): {verdict}")


def _check(attribute: str, low: int, high: int) -> None:
    if attribute not in HELPSTEER.names:
        raise ConfigurationError(f"the reward model scores {', '.join(HELPSTEER.names)}; got {attribute!r}")
    if not low < high:
        raise ConfigurationError(f"the steering check needs low < high, got {low} and {high}")


def check_steering(
    generate: Callable[[dict[str, int]], str], score: Callable[[str], AttributeScores], *,
    attribute: str = "verbosity", low: int = 1, high: int = 4,
) -> SteeringResult:
    """Generate with ``{attribute: low}`` and ``{attribute: high}``, score both replies, compare."""
    _check(attribute, low, high)
    replies = [generate({attribute: value}) for value in (low, high)]
    scores = [score(reply) for reply in replies]
    return SteeringResult(attribute, low, high, replies[0], replies[1], scores[0], scores[1])


async def acheck_steering(
    generate: Callable[[dict[str, int]], Awaitable[str]], score: Callable[[str], Awaitable[AttributeScores]], *,
    attribute: str = "verbosity", low: int = 1, high: int = 4,
) -> SteeringResult:
    """Async `check_steering`."""
    _check(attribute, low, high)
    replies = [await generate({attribute: value}) for value in (low, high)]
    scores = [await score(reply) for reply in replies]
    return SteeringResult(attribute, low, high, replies[0], replies[1], scores[0], scores[1])
