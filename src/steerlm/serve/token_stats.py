"""Token facts the current servers report, derived from any `Backend`'s token stream.

`Backend.stream` yields the cumulative text after each generated token, so the pieces between steps are the
tokens and their number is the output token count. Prompt tokens come from the backend's own
``count_tokens(text)`` when it has one (the Hugging Face backend's tokenizer), else from a whitespace split
(the scripted model emits one word per token). The local server has no real probabilities: log-probabilities
are deterministic stand-ins derived from each token's text, so a client can check it got the right ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["count_tokens", "token_id", "token_logprob", "token_pieces"]


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


def token_logprob(piece: str) -> float:
    """A stand-in log-probability in (-4, 0] for one token, fixed by its text."""
    return -round((_digest(piece) % 4000) / 1000.0, 3)


def token_id(piece: str) -> int:
    """A stand-in vocabulary id for one token, fixed by its text."""
    return _digest(piece) % 32000
