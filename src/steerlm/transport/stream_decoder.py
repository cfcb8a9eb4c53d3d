"""Per-row text deltas from the responses of one stream (the decoding half of a codec's streaming)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from steerlm.transport.base import Array
from steerlm.transport.codecs import IN_BAND_ERROR_PREFIX
from steerlm.transport.tensors import rows_to_text

if TYPE_CHECKING:
    from steerlm.transport.codecs import Codec

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """Turns the responses of one stream into per-row text deltas.

    Cumulative signatures (NeMo) send the whole text so far: the delta is the new suffix, and a
    trailing U+FFFD (half of a multi-byte character) is held back until it resolves. Delta
    signatures (TRT-LLM) are passed through. Each row keeps its deltas (joined once, by `texts`)
    and the length emitted so far, never a growing copy of the whole text.
    """

    def __init__(self, codec: Codec, rows: int, *, keep_texts: bool = True) -> None:
        self._codec = codec
        self._key = codec.text_output
        self._cumulative = codec.cumulative_stream
        self._keep = keep_texts  # False: the caller keeps the text (`texts` stays empty)
        self._parts: list[list[str]] = [[] for _ in range(rows)]
        self._emitted = [0] * rows
        self._seen = [""] * rows
        self._one_row = rows == 1
        self._pass_through = not self._cumulative and not keep_texts  # deltas returned as decoded

    @property
    def texts(self) -> list[str]:
        """The text of every row so far."""
        return ["".join(parts) for parts in self._parts]

    def _emit(self, row: int, delta: str) -> str:
        if delta:
            if self._keep:
                self._parts[row].append(delta)
            self._emitted[row] += len(delta)
        return delta

    def feed(self, outputs: Mapping[str, Array], *, final: bool = False) -> list[str]:
        """The delta of every row for one response (an empty response yields empty deltas)."""
        rows_count = len(self._parts)
        if self._codec.text_output not in outputs:
            return self.flush() if final else [""] * rows_count
        rows = rows_to_text(outputs[self._codec.text_output])
        self._codec.check_in_band(rows)
        deltas = [self._delta(i, text, final) for i, text in enumerate(rows[:rows_count])]
        deltas.extend("" for _ in range(rows_count - len(deltas)))
        return deltas

    def feed_one(self, outputs: Mapping[str, Array], final: bool = False) -> str:
        """`feed` for a one-row stream (the per-token hot path of `StreamAssembler`): the row's delta."""
        array = outputs.get(self._key)
        if array is None or not self._one_row or getattr(array, "size", 0) != 1:
            return self.feed(outputs, final=final)[0]
        raw = array.item()
        text = raw.decode("utf-8", "replace") if type(raw) is bytes else str(raw)
        if text.startswith(IN_BAND_ERROR_PREFIX):
            self._codec.check_in_band((text,))
        if self._pass_through:
            return text
        return self._delta(0, text, final)

    def _delta(self, row: int, text: str, final: bool) -> str:
        if not self._cumulative:
            return self._emit(row, text)
        self._seen[row] = text
        safe = text if final else text.rstrip("\ufffd")
        return self._emit(row, safe[self._emitted[row]:])  # a rewritten earlier part cannot be retracted

    def flush(self) -> list[str]:
        """At the end of the stream: release any held-back text."""
        if not self._cumulative:
            return [""] * len(self._parts)
        return [self._emit(i, seen[self._emitted[i]:]) for i, seen in enumerate(self._seen)]
