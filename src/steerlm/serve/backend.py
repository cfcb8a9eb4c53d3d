"""The contract between the Triton signature layer and a text-generation model.

A signature (for example NeMo deploy's ``prompts``/``outputs``) decodes request tensors into a list of
prompts plus one `SamplingRequest`, calls a `Backend`, and encodes the texts it returns. Backends know
nothing about Triton or numpy; signatures know nothing about the model behind them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "SamplingRequest", "ServerFault"]


@dataclass(frozen=True)
class SamplingRequest:
    """Decoded generation parameters of one Triton request (NeMo's first-row semantics).

    Absent inputs take NeMo deploy's server defaults: 64 tokens, greedy (top_k 1, top_p 0.0,
    temperature 1.0). `stop_words` and `bad_words` are the CSV-split words of the first row.
    `extras` carries the remaining decoded inputs (e.g. ``task_id``, ``no_repeat_ngram_size``).
    """

    max_tokens: int = 64
    top_k: int = 1
    top_p: float = 0.0
    temperature: float = 1.0
    seed: int | None = None
    stop_words: tuple[str, ...] = ()
    bad_words: tuple[str, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the parameters (for logs and test models that echo them)."""
        return {
            "max_tokens": self.max_tokens,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "temperature": self.temperature,
            "seed": self.seed,
            "stop_words": list(self.stop_words),
            "bad_words": list(self.bad_words),
            "extras": dict(self.extras),
        }


class ServerFault(Exception):
    """Raised by a backend when Triton itself must report an error.

    Any other exception from a backend is turned into NeMo's in-band reply
    ``"An error occurred: <message>"`` and the call succeeds.
    """


@runtime_checkable
class Backend(Protocol):
    """A text-generation model behind a Triton signature.

    Both methods return text **without** the prompt, one entry per prompt, in order.
    """

    def generate(self, prompts: Sequence[str], params: SamplingRequest) -> list[str]:
        """The full completion of every prompt."""
        ...

    def stream(self, prompts: Sequence[str], params: SamplingRequest) -> Iterator[list[str]]:
        """One list per generated token holding the CUMULATIVE text of every prompt so far.

        A row that has finished repeats its final text until every row has finished.
        """
        ...
