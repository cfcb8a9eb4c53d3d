"""Token facts the current servers report, derived from any `Backend`'s token stream.

`Backend.stream` yields the cumulative text after each generated token, so the pieces between steps are the
tokens and their number is the output token count. Prompt tokens come from the backend's own
``count_tokens(text)`` when it has one (the Hugging Face backend's tokenizer), else from a whitespace split
(the scripted model emits one word per token).

Log-probabilities come from a next-token distribution the local server defines for every step: the token
generated (the most likely one: the local models decode greedily) and `ALTERNATIVES`, each scored from a hash
of the pair (so the numbers are fixed by the text, and a client can check it got the right ones), normalised
with a log-softmax — real log-probabilities of a proper distribution (they sum to 1), listed most likely first.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ALTERNATIVES", "count_tokens", "distribution", "token_id", "token_logprob", "token_pieces"]

# The other tokens of every step's distribution (20: OpenAI's most top_logprobs).
ALTERNATIVES = (" the", " a", " and", ".", ",", " of", " to", " is", "\n", " in", " it", " that", " for", " on",
                " with", " as", " was", " be", " at", " by")


def count_tokens(backend: Any, text: str) -> int:
    """The number of tokens in `text` as the backend counts them (else whitespace-separated words)."""
    counter = getattr(backend, "count_tokens", None)
    return int(counter(text)) if callable(counter) else len(text.split())


def token_pieces(steps: Iterable[Sequence[str]], rows: int) -> list[list[str]]:
    """Per row, the text each generated token added (a finished row repeating its text adds none)."""
    pieces: list[list[str]] = [[] for _ in range(rows)]
    seen = [""] * rows
    for step in steps:
        for row, text in enumerate(step[:rows]):
            if text != seen[row]:
                pieces[row].append(text[len(seen[row]):])
                seen[row] = text
    return pieces


def _digest(piece: str) -> int:
    return int.from_bytes(hashlib.sha256(piece.encode("utf-8")).digest()[:4], "big")


def distribution(piece: str) -> list[tuple[str, float]]:
    """The step's ``(token, logprob)`` pairs, most likely first: `piece` (logit 0, the argmax) and every other
    alternative (a logit in (-6, -1], fixed by the pair's hash), log-softmax normalised."""
    logits = {piece: 0.0}
    for other in ALTERNATIVES:
        logits.setdefault(other, -1.0 - (_digest(piece + "\x00" + other) % 5000) / 1000.0)
    norm = math.log(sum(math.exp(v) for v in logits.values()))
    return sorted(((token, value - norm) for token, value in logits.items()), key=lambda pair: -pair[1])


def token_logprob(piece: str) -> float:
    """The log-probability of `piece` at the step that generated it (`distribution`)."""
    return distribution(piece)[0][1]


def token_id(piece: str) -> int:
    """A stand-in vocabulary id for one token, fixed by its text."""
    return _digest(piece) % 32000
