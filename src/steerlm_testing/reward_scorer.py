"""The scripted reward scorer: deterministic HelpSteer scores from text features, for tests.

It is the backend of the reward models in the kit's ``reward`` preset (served through the product's
NeMo-Aligner reward signature, `steerlm.serve.reward`). It rates the **last assistant turn** of each
sentence (the text between the last ``<extra_id_1>Assistant\\n`` and the trailing ``<extra_id_2>``;
the whole sentence when there is none).
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

import re
import time
from collections.abc import Sequence
from typing import Any

from steerlm.attributes import HELPSTEER
from steerlm_testing.directives import parse_directives

__all__ = ["ScriptedScorer", "reply_of", "scripted_rewards"]

_ASSISTANT = "<extra_id_1>Assistant\n"
_LABEL = "<extra_id_2>"
_REWARDS = re.compile(r"\[\[rewards=(.*?)\]\]", re.DOTALL)
_TOXIC = frozenset({"hate", "stupid", "idiot", "awful", "kill"})
_FUNNY = frozenset({"haha", "lol", "joke", "funny", "pun"})
_HEDGES = frozenset({"maybe", "probably", "guess"})


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
