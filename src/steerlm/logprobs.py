"""Per-token log-probabilities: one neutral shape for every server, and the alignment that names tokens.

Servers report log-probabilities in several shapes (`steerlm.transport.reports` parses them):

* the chosen tokens' values only (NeMo Export-Deploy's Megatron ``log_probs`` FP32 ``[B, T]``);
* per position, the most likely tokens with their log-probabilities, sorted by rank (Megatron's
  ``top_logprobs``, NeMo's vLLM exporter ``log_probs``, Triton's vLLM backend ``logprobs``);
* the chosen token, its value and the alternatives (OpenAI-compatible ``/v1/completions``).

Each position becomes a `TokenLogprob`. Where the server does not say which listed token was generated,
`align` picks it from the reply's text (the candidate the remaining text starts with; the longest when
several do; one whose value equals the reported chosen value first). Pure, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["MAX_TOP_LOGPROBS", "TokenLogprob", "align", "trimmed"]

MAX_TOP_LOGPROBS = 20  # OpenAI's limit for ``top_logprobs``; legacy completions allow 5


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its log-probability, and the most likely tokens at its position.

    `top` holds ``(token, logprob)`` pairs, most likely first (at most the `top_logprobs` asked for;
    empty when none were asked). `token` is ``""`` when the server named no token and the text could
    not tell (a special token left out of the reply).
    """

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    @property
    def bytes(self) -> list[int]:
        """The token's UTF-8 bytes (OpenAI's ``bytes`` field)."""
        return list(self.token.encode("utf-8"))


def trimmed(entries: Sequence[TokenLogprob], top: int) -> tuple[TokenLogprob, ...]:
    """`entries` with at most `top` alternatives each (a server may list one more: the sampled token)."""
    return tuple(e if len(e.top) <= top else replace(e, top=e.top[:top]) for e in entries)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)  # FP32 on the wire


def _pick(candidates: Sequence[tuple[str, float]], rest: str, value: float | None) -> tuple[str, float] | None:
    matching = [c for c in candidates if c[0] and rest.startswith(c[0])]
    if value is not None:
        exact = [c for c in matching if _close(c[1], value)]
        matching = exact or matching
    if matching:
        return max(matching, key=lambda c: len(c[0]))
    return None


def align(entries: Sequence[TokenLogprob], text: str) -> list[TokenLogprob]:
    """Name the generated token of every entry whose `token` is ``""`` from `text`, the reply they produced.

    An entry with an empty token and alternatives takes the alternative the remaining text starts with
    (its value: the reported one when the server gave it — NaN means it did not — else the alternative's).
    With no match, a position that listed one token takes it when its value agrees (a special token the text
    leaves out); otherwise the token stays ``""`` (a sampled token outside the listed ones).
    """
    out: list[TokenLogprob] = []
    at = 0
    for entry in entries:
        token, value = entry.token, entry.logprob
        if not token and entry.top:
            known = None if math.isnan(value) else value
            found = _pick(entry.top, text[at:], known)
            only = entry.top[0] if len(entry.top) == 1 else None
            if found is None and only is not None and (known is None or _close(only[1], known)):
                found = only  # a token the text leaves out (a special token), listed alone
            if found is not None:
                token, value = found[0], value if known is not None else found[1]
        if token and text.startswith(token, at):
            at += len(token)
        out.append(entry if (token, value) == (entry.token, entry.logprob) else replace(entry, token=token,
                                                                                        logprob=value))
    return out
