"""NeMo-Aligner's reward-model signature with a deterministic scripted scorer (REFERENCE §3c).

Signature (``examples/nlp/gpt/serve_reward_model.py``; bound as NeMo-Aligner binds it):

* ``current`` (Aligner v0.4+): inputs ``sentences`` BYTES ``(1,)``, ``tokens`` INT64 ``(-1,)`` and
  ``sequence_lengths`` INT64 ``(1,)``, all optional; output ``rewards`` FP32 declared ``(1,)`` but
  returned as ``[B,9]`` (PyTriton does not enforce the declared shape unless ``strict=True``);
* ``v0_1`` (Aligner v0.1–v0.3): the same plus the input ``add_EOS`` BOOL and the output ``exceeded``
  INT32 ``[B,1]``.

The scripted scorer rates the **last assistant turn** of each sentence (the text between the last
``<extra_id_1>Assistant\\n`` and the trailing ``<extra_id_2>``; the whole sentence when there is none).
Raw values are deliberately not clamped, so clients must clamp. With ``words`` the whitespace-split
words of the reply and ``n`` their number:

=============  ================================================================
verbosity      ``n / 10``
complexity     mean word length − 2.5 (0 for an empty reply)
toxicity       2 × words from {hate, stupid, idiot, awful, kill}
humor          1.5 × words from {haha, lol, joke, funny, pun}
creativity     4 × distinct words / n − 0.5 (0 for an empty reply)
helpfulness    4.2 when n ≥ 5, else 0.8 × n
correctness    3.6 − 1.5 × words from {maybe, probably, guess}
coherence      4.0 when the reply ends with ``.``, ``!`` or ``?``, else 2.5
quality        the mean of helpfulness, correctness and coherence
=============  ================================================================

(word matching is case-insensitive and ignores surrounding punctuation). Test directives in the text:
``[[rewards=v1,v2,...]]`` returns exactly those floats (any count, ``nan`` allowed — for the client's
length and value checks), ``[[sleep=S]]`` waits S seconds, ``[[raise=MSG]]`` fails the whole Triton
request. A ``tokens`` input is rejected (the scripted scorer has no tokenizer).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from pytriton.model_config import Tensor

from steerlm.attributes import HELPSTEER
from steerlm.serve.directives import parse_directives
from steerlm.serve.registry import Binding

__all__ = ["REWARD_VARIANTS", "RewardScorer", "ScriptedScorer", "bind", "bind_v0_1", "reply_of", "scripted_rewards"]

_ASSISTANT = "<extra_id_1>Assistant\n"
_LABEL = "<extra_id_2>"
_REWARDS = re.compile(r"\[\[rewards=(.*?)\]\]", re.DOTALL)
_TOXIC = frozenset({"hate", "stupid", "idiot", "awful", "kill"})
_FUNNY = frozenset({"haha", "lol", "joke", "funny", "pun"})
_HEDGES = frozenset({"maybe", "probably", "guess"})


class RewardScorer(Protocol):
    """Anything that rates sentences: one row of floats per sentence (normally 9, HelpSteer order)."""

    def score(self, sentences: Sequence[str]) -> list[list[float]]: ...


def reply_of(sentence: str) -> str:
    """The last assistant turn of a rendered reward-model prompt (or the whole text)."""
    body = sentence[: -len(_LABEL)] if sentence.endswith(_LABEL) else sentence
    start = body.rfind(_ASSISTANT)
    if start == -1:
        return body
    return body[start + len(_ASSISTANT):].removesuffix("\n")


def scripted_rewards(reply: str) -> list[float]:
    """The documented text-feature scores of one reply, in HelpSteer order (unclamped)."""
    words = [w.strip(".,;:!?\"'()").lower() for w in reply.split()]
    n = len(words)

    def count(vocabulary: frozenset[str]) -> int:
        return sum(1 for w in words if w in vocabulary)

    helpfulness = 4.2 if n >= 5 else 0.8 * n
    correctness = 3.6 - 1.5 * count(_HEDGES)
    coherence = 4.0 if reply.rstrip().endswith((".", "!", "?")) else 2.5
    values = {
        "quality": (helpfulness + correctness + coherence) / 3,
        "toxicity": 2.0 * count(_TOXIC),
        "humor": 1.5 * count(_FUNNY),
        "creativity": 4.0 * len(set(words)) / n - 0.5 if n else 0.0,
        "helpfulness": helpfulness,
        "correctness": correctness,
        "coherence": coherence,
        "complexity": sum(len(w) for w in reply.split()) / n - 2.5 if n else 0.0,
        "verbosity": n / 10,
    }
    return [float(values[name]) for name in HELPSTEER.names]


class ScriptedScorer:
    """The deterministic scorer described in the module docstring."""

    def __init__(self, *, sleep: Any = time.sleep, **_options: str) -> None:
        self._sleep = sleep

    def score(self, sentences: Sequence[str]) -> list[list[float]]:
        rows = []
        for sentence in sentences:
            directives = parse_directives(sentence)
            if directives.raise_ is not None:
                raise RuntimeError(directives.raise_)
            if directives.sleep:
                self._sleep(directives.sleep)
            given = _REWARDS.findall(sentence)
            if given:
                rows.append([float(v) for v in given[-1].split(",") if v.strip()])
            else:
                rows.append(scripted_rewards(reply_of(sentence)))
        return rows


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
        raise ValueError("the scripted reward model takes 'sentences'; 'tokens' input is not supported")
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
    return backend if callable(getattr(backend, "score", None)) else ScriptedScorer()


def bind(backend: Any) -> Binding:
    """Signature builder (registry): the current Aligner signature; a text backend gets the scripted scorer."""
    variant = REWARD_VARIANTS["current"]
    return Binding(variant.inputs, variant.outputs, _make_infer(_scorer_of(backend), variant))


def bind_v0_1(backend: Any) -> Binding:
    """Signature builder for the Aligner v0.1–v0.3 variant (``add_EOS`` in, ``exceeded`` out)."""
    variant = REWARD_VARIANTS["v0_1"]
    return Binding(variant.inputs, variant.outputs, _make_infer(_scorer_of(backend), variant))
