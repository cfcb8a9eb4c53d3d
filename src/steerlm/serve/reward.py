"""NeMo-Aligner's reward-model signature, served over any `RewardScorer` backend.

Signature (``examples/nlp/gpt/serve_reward_model.py``; bound as NeMo-Aligner binds it):

* ``current`` (Aligner v0.4+): inputs ``sentences`` BYTES ``(1,)``, ``tokens`` INT64 ``(-1,)`` and
  ``sequence_lengths`` INT64 ``(1,)``, all optional; output ``rewards`` FP32 declared ``(1,)`` but
  returned as ``[B,9]`` (PyTriton does not enforce the declared shape unless ``strict=True``);
* ``v0_1`` (Aligner v0.1–v0.3): the same plus the input ``add_EOS`` BOOL and the output ``exceeded``
  INT32 ``[B,1]``.

The backend behind it is a `RewardScorer`: anything with ``score(sentences) -> rows of floats`` (one
row per sentence, normally the 9 HelpSteer attributes in order). Rows are returned as the scorer gives
them — unclamped, and padded with NaN when ragged — so clients must check and clamp. A ``tokens``
input is rejected: this signature feeds the scorer text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from pytriton.model_config import Tensor

from steerlm.serve.registry import Binding

__all__ = ["REWARD_VARIANTS", "RewardScorer", "bind", "bind_v0_1"]


class RewardScorer(Protocol):
    """Anything that rates sentences: one row of floats per sentence (normally 9, HelpSteer order)."""

    def score(self, sentences: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class RewardVariant:
    """One historical version of the Aligner signature."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


_CURRENT_INPUTS = (
    Tensor(name="sentences", shape=(1,), dtype=bytes, optional=True),
    Tensor(name="tokens", shape=(-1,), dtype=np.int64, optional=True),
    Tensor(name="sequence_lengths", shape=(1,), dtype=np.int64, optional=True),
)
_REWARDS_OUT = Tensor(name="rewards", shape=(1,), dtype=np.float32)
REWARD_VARIANTS: dict[str, RewardVariant] = {
    "current": RewardVariant("current", _CURRENT_INPUTS, (_REWARDS_OUT,)),
    "v0_1": RewardVariant(
        "v0_1",
        (*_CURRENT_INPUTS, Tensor(name="add_EOS", shape=(1,), dtype=np.bool_, optional=True)),
        (_REWARDS_OUT, Tensor(name="exceeded", shape=(1,), dtype=np.int32)),
    ),
}


def _sentences(data: Mapping[str, NDArray[Any]]) -> list[str]:
    if "tokens" in data and "sentences" not in data:
        raise ValueError("this reward model takes 'sentences'; the 'tokens' input is not supported")
    if "sentences" not in data:
        raise ValueError("either 'sentences' or 'tokens' and 'sequence_lengths' must be provided")
    values = np.asarray(data["sentences"]).reshape(len(data["sentences"]), -1)[:, 0]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _matrix(rows: list[list[float]]) -> NDArray[Any]:
    width = max((len(r) for r in rows), default=0)
    if any(len(r) != width for r in rows):  # ragged on purpose: pad with NaN, the client rejects it
        return np.array([r + [float("nan")] * (width - len(r)) for r in rows], dtype=np.float32)
    return np.array(rows, dtype=np.float32).reshape(len(rows), width)


def _make_infer(scorer: RewardScorer, variant: RewardVariant) -> Any:
    def answer(request: Any) -> dict[str, NDArray[Any]]:
        data: Mapping[str, NDArray[Any]] = getattr(request, "data", request)
        sentences = _sentences(data)
        out = {"rewards": _matrix(scorer.score(sentences))}
        if variant.name == "v0_1":
            out["exceeded"] = np.zeros((len(sentences), 1), dtype=np.int32)
        return out

    async def infer(requests: Sequence[Any]) -> list[dict[str, NDArray[Any]]]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(None, answer, r) for r in requests)))

    return infer


def _scorer_of(backend: Any) -> RewardScorer:
    if not callable(getattr(backend, "score", None)):
        raise ValueError(f"the reward signature needs a backend with score(sentences) (a RewardScorer), "
                         f"got {type(backend).__name__}")
    return backend  # type: ignore[no-any-return]


def bind(backend: Any) -> Binding:
    """Signature builder (registry): the current Aligner signature over a `RewardScorer` backend."""
    variant = REWARD_VARIANTS["current"]
    return Binding(variant.inputs, variant.outputs, _make_infer(_scorer_of(backend), variant))


def bind_v0_1(backend: Any) -> Binding:
    """Signature builder for the Aligner v0.1–v0.3 variant (``add_EOS`` in, ``exceeded`` out)."""
    variant = REWARD_VARIANTS["v0_1"]
    return Binding(variant.inputs, variant.outputs, _make_infer(_scorer_of(backend), variant))
