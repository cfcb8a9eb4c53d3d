"""Score conversations with a SteerLM attribute-prediction (reward) model: `RewardModel` / `AsyncRewardModel`.

The server is NeMo-Aligner's ``serve_reward_model.py`` (PyTriton, model ``reward_model``, **HTTP only**,
default port 5555; the Llama2-13B-SteerLM-RM card uses 1424): ``sentences`` in, ``rewards`` ``[B,9]``
out. Scoring follows NeMo-Aligner's ``attribute_annotate.py`` (REFERENCE §3c):

* the prompt is the conversation rendered for the ``Llama2-13B-SteerLM-RM`` profile: the fixed SteerLM
  system text (system messages of the conversation are ignored, as Aligner ignores a record's
  ``system``), then the turns up to and including the scored assistant turn, then ``<extra_id_2>``;
* **every assistant message** is scored, each with the conversation so far;
* each raw float is clamped to the attribute range (0–4) and rounded with Python's `round`
  (banker's rounding: 2.5 → 2, 3.5 → 4), then named positionally in the profile's attribute order —
  after checking that the server returned exactly one value per attribute (see
  `steerlm.transport.reward_model`).

Prompts of several conversations and turns share requests (split by the model's ``max_batch_size``);
connection handling, readiness wait, retries and failover are those of `steerlm.SteerLMClient`, whose
public `request()` sends the ``sentences`` tensors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from steerlm.attributes import AttributeSet, encode_labels
from steerlm.client import AsyncSteerLMClient, ClientSettings, SteerLMClient
from steerlm.client.core import not_utf8
from steerlm.client.settings import DEFAULT_REWARD_URL
from steerlm.errors import ConfigurationError, PromptError
from steerlm.profiles import ModelProfile, get_profile
from steerlm.prompts import Message, render, to_messages
from steerlm.transport.base import ModelSpec
from steerlm.transport.reward_model import RewardCodec, decode_rewards

__all__ = [
    "DEFAULT_REWARD_URL",
    "REWARD_PROFILE",
    "AsyncRewardModel",
    "AttributeScores",
    "RewardModel",
    "annotation_prompts",
    "to_scores",
]

REWARD_PROFILE = "Llama2-13B-SteerLM-RM"
ConversationLike = Iterable[Message | Mapping[str, Any]]


@dataclass(frozen=True)
class AttributeScores:
    """The scores of one assistant turn.

    `attributes`: clamped and rounded integers by name, in the attribute set's order; `raw`: the
    model's floats by name; `turn`: index of the scored message in the conversation given (None for
    `score_prompts`).
    """

    attributes: Mapping[str, int]
    raw: Mapping[str, float]
    turn: int | None = None

    @property
    def label(self) -> str:
        """The label string, e.g. ``quality:4,toxicity:0,...,verbosity:2``."""
        return ",".join(f"{name}:{value}" for name, value in self.attributes.items())

    def __getitem__(self, name: str) -> int:
        return self.attributes[name]


def to_scores(raw: Sequence[float], attribute_set: AttributeSet, turn: int | None = None) -> AttributeScores:
    """Name raw floats positionally, clamp them to the set's range and `round` them (Aligner's rule)."""
    if len(raw) != len(attribute_set.names):
        raise ConfigurationError(f"{len(raw)} values for {len(attribute_set.names)} attributes")
    low, high = float(attribute_set.low), float(attribute_set.high)
    values = {name: round(min(high, max(low, float(v)))) for name, v in zip(attribute_set.names, raw, strict=True)}
    encode_labels(values, attribute_set)  # validates completeness and order
    return AttributeScores(values, dict(zip(attribute_set.names, map(float, raw), strict=True)), turn)


def annotation_prompts(
    messages: ConversationLike, profile: str | ModelProfile = REWARD_PROFILE
) -> list[tuple[int, str]]:
    """``(message index, prompt)`` for every assistant message: the conversation up to it, rendered."""
    items = to_messages(messages)
    kept = [(i, m) for i, m in enumerate(items) if m.role != "system"]
    out = []
    for position, (index, message) in enumerate(kept):
        if message.role == "assistant":
            out.append((index, render(profile, [m for _, m in kept[: position + 1]])))
    return out


class _Shared:
    """Settings and the pure steps shared by the sync and async models."""

    def __init__(self, profile: str | ModelProfile) -> None:
        self.profile = get_profile(profile)
        if self.profile.attribute_set is None:
            raise ConfigurationError(f"profile {self.profile.name!r} has no attribute set to score")
        self.attribute_set: AttributeSet = self.profile.attribute_set

    def prompts(self, conversations: Sequence[ConversationLike]) -> tuple[list[list[int]], list[str]]:
        turns: list[list[int]] = []
        prompts: list[str] = []
        for number, conversation in enumerate(conversations):
            pairs = annotation_prompts(conversation, self.profile)
            if not pairs:
                raise PromptError(f"conversation {number} has no assistant message to score")
            turns.append([i for i, _ in pairs])
            prompts.extend(p for _, p in pairs)
        return turns, _utf8(prompts)

    def group(self, turns: list[list[int]], raws: list[tuple[float, ...]]) -> list[list[AttributeScores]]:
        out, position = [], 0
        for indexes in turns:
            out.append([to_scores(raws[position + k], self.attribute_set, i) for k, i in enumerate(indexes)])
            position += len(indexes)
        return out

    def scores(self, raws: list[tuple[float, ...]]) -> list[AttributeScores]:
        return [to_scores(raw, self.attribute_set) for raw in raws]


def _prompt_list(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str | bytes) or not all(isinstance(p, str) for p in prompts):
        raise ConfigurationError(f"score_prompts takes a list of rendered prompt strings, got {type(prompts).__name__}"
                                 "; for one prompt pass [prompt]")
    return _utf8(list(prompts))


def _utf8(prompts: list[str]) -> list[str]:
    error = not_utf8(prompts)
    if error is not None:
        raise error
    return prompts


def _settings(model: str, url: str | Sequence[str], kwargs: dict[str, Any]) -> ClientSettings:
    return ClientSettings.build(model, url, **{**kwargs, "signature": RewardCodec.name, "profile": None})


def _chunks(spec: ModelSpec, prompts: Sequence[str]) -> list[list[str]]:
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise ConfigurationError("prompts must be a list of rendered prompt strings, not one string")
    size = max(spec.max_batch_size, 1)
    return [list(prompts[i:i + size]) for i in range(0, len(prompts), size)]


class RewardModel(_Shared):
    """Blocking client for a SteerLM reward model (NeMo-Aligner ``reward_model``); thread-safe.

    ``RewardModel(url="http://host:5555")``; other keyword arguments are those of `SteerLMClient`
    (``timeout``, ``max_retries``, ``headers``, ``root_certificates``, ``verify_ssl``, ``ready_timeout``;
    ``url`` may be a list of replicas: load-balanced, with failover).
    """

    def __init__(self, model: str = "reward_model", url: str | Sequence[str] = DEFAULT_REWARD_URL, *,
                 profile: str | ModelProfile = REWARD_PROFILE, **kwargs: Any) -> None:
        super().__init__(profile)
        self._client = SteerLMClient(_settings(model, url, kwargs))

    @classmethod
    def from_settings(cls, settings: ClientSettings) -> RewardModel:
        """A reward model for these client settings (their `signature` is set to ``reward_model``)."""
        model = cls.__new__(cls)
        _Shared.__init__(model, REWARD_PROFILE)
        model._client = SteerLMClient(replace(settings, signature=RewardCodec.name, profile=None))
        return model

    def _rewards(self, prompts: Sequence[str]) -> list[tuple[float, ...]]:
        if not prompts:
            return []
        spec = self._client.model_spec()
        out: list[tuple[float, ...]] = []
        codec = RewardCodec(spec)
        for chunk in _chunks(spec, prompts):
            outputs = self._client.request(codec.encode_prompts(chunk), outputs=codec.outputs)
            out.extend(decode_rewards(outputs, len(chunk), model=spec.name, attribute_set=self.attribute_set))
        return out

    def score(self, messages: ConversationLike) -> list[AttributeScores]:
        """The scores of every assistant message of one conversation (PromptError when there is none)."""
        return self.score_batch([messages])[0]

    def score_batch(self, conversations: Sequence[ConversationLike]) -> list[list[AttributeScores]]:
        """`score` for several conversations; all their turns share requests."""
        turns, prompts = self.prompts(conversations)
        return self.group(turns, self._rewards(prompts))

    def score_prompts(self, prompts: Sequence[str]) -> list[AttributeScores]:
        """Scores of already rendered prompts (each ending in ``<extra_id_2>``)."""
        return self.scores(self._rewards(_prompt_list(prompts)))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RewardModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRewardModel(_Shared):
    """asyncio twin of `RewardModel` (same arguments); requests of one call run concurrently."""

    def __init__(self, model: str = "reward_model", url: str | Sequence[str] = DEFAULT_REWARD_URL, *,
                 profile: str | ModelProfile = REWARD_PROFILE, **kwargs: Any) -> None:
        super().__init__(profile)
        self._client = AsyncSteerLMClient(_settings(model, url, kwargs))

    @classmethod
    def from_settings(cls, settings: ClientSettings) -> AsyncRewardModel:
        """A reward model for these client settings (their `signature` is set to ``reward_model``)."""
        model = cls.__new__(cls)
        _Shared.__init__(model, REWARD_PROFILE)
        model._client = AsyncSteerLMClient(replace(settings, signature=RewardCodec.name, profile=None))
        return model

    async def _rewards(self, prompts: Sequence[str]) -> list[tuple[float, ...]]:
        if not prompts:
            return []
        spec = await self._client.model_spec()
        codec, chunks = RewardCodec(spec), _chunks(spec, prompts)
        parts = await asyncio.gather(*(self._client.request(codec.encode_prompts(c), outputs=codec.outputs)
                                       for c in chunks))
        return [row for chunk, outputs in zip(chunks, parts, strict=True)
                for row in decode_rewards(outputs, len(chunk), model=spec.name, attribute_set=self.attribute_set)]

    async def score(self, messages: ConversationLike) -> list[AttributeScores]:
        return (await self.score_batch([messages]))[0]

    async def score_batch(self, conversations: Sequence[ConversationLike]) -> list[list[AttributeScores]]:
        turns, prompts = self.prompts(conversations)
        return self.group(turns, await self._rewards(prompts))

    async def score_prompts(self, prompts: Sequence[str]) -> list[AttributeScores]:
        return self.scores(await self._rewards(_prompt_list(prompts)))

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncRewardModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
