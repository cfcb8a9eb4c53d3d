"""A small real reward-model backend: rates replies on the HelpSteer attributes from text features.

It labels the demo model's training data (SteerLM step 2 in miniature: ``training/label.sh`` serves it as
``reward_model`` with ``steerlm serve --preset none --model reward_model=reward --backend
steerlm.serve.text_scorer:TextFeatureScorer`` and runs ``steerlm annotate`` against it, over the wire, as
with a real SteerLM reward model) and it is the ``reward_model`` of ``steerlm serve --preset demo``. It rates
the last assistant turn of each conversation, in HelpSteer order:

=============  ====================================================================================
verbosity      rises with the word count ``n``, piecewise linearly through `VERBOSITY_KNOTS`, so the rounded
               label is 0 below 20 words, 1 below 35, 2 below 60, 3 below 90, else 4 (and the raw
               score of a longer reply is always higher)
complexity     2 × (mean word length − 3), so everyday prose scores 3–4
quality        4 for a reply that ends a sentence, 3 otherwise
helpfulness    4 for a reply of 8 words or more, else 3
correctness    4
coherence      4 when the reply ends with ``.``, ``!`` or ``?``, else 2
toxicity,      0 (the base model's answers are polite, sober and plain)
humor,
creativity
=============  ====================================================================================

The client rounds and clamps to 0–4. It is a stand-in for a trained reward model: it knows nothing
about correctness or tone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from steerlm.prompts import LABEL_START, TURN_START

__all__ = ["VERBOSITY_KNOTS", "TextFeatureScorer", "rate", "reply_of", "verbosity_of"]

_ASSISTANT = f"{TURN_START}Assistant\n"


def reply_of(sentence: str) -> str:
    """The last assistant turn of a rendered reward-model prompt (the text before its closing
    ``\n<extra_id_2>``), or the whole text when it has no assistant turn."""
    body = sentence.removesuffix(LABEL_START)
    start = body.rfind(_ASSISTANT)
    if start == -1:
        return body
    return body[start + len(_ASSISTANT):].removesuffix(TURN_START).removesuffix("\n")


VERBOSITY_KNOTS = ((0, -0.49), (20, 0.51), (35, 1.51), (60, 2.51), (90, 3.51), (150, 4.51))


def verbosity_of(words: int) -> float:
    """The raw verbosity of a reply of `words` words (linear between `VERBOSITY_KNOTS`, then onwards)."""
    for (x0, y0), (x1, y1) in itertools.pairwise(VERBOSITY_KNOTS):
        if words < x1 or x1 == VERBOSITY_KNOTS[-1][0]:
            return y0 + (words - x0) * (y1 - y0) / (x1 - x0)
    raise AssertionError("unreachable")


def rate(reply: str) -> list[float]:
    """The nine scores of one reply, in HelpSteer order."""
    words = reply.split()
    n = len(words)
    ends_sentence = reply.rstrip().endswith((".", "!", "?"))
    mean_length = sum(len(w) for w in words) / n if n else 0.0
    return [
        4.0 if ends_sentence else 3.0,  # quality
        0.0,  # toxicity
        0.0,  # humor
        0.0,  # creativity
        4.0 if n >= 8 else 3.0,  # helpfulness
        4.0,  # correctness
        4.0 if ends_sentence else 2.0,  # coherence
        2.0 * (mean_length - 3.0),  # complexity
        verbosity_of(n),  # verbosity
    ]


class TextFeatureScorer:
    """A reward-model backend (``score``) rating replies from text features; see the module docstring."""

    def __init__(self, **_options: Any) -> None:
        pass

    def score(self, sentences: Sequence[str]) -> list[list[float]]:
        return [rate(reply_of(sentence)) for sentence in sentences]
