"""Stream assembly, shared by every transport that streams (gRPC, HTTP generate extension), sync and async.

`StreamAssembler` turns the events of one prompt's stream into `StreamChunk` deltas through the
StopMatcher, so nothing past a stop string is ever yielded; it keeps the deltas (joined only when the
partial text of an interrupted stream is asked for), never a growing copy of the text. `Joiner`
collects a decoupled stream of one request (one or more prompts) into whole texts for `generate` /
`batch`. The codec's stream decoder does the signature-specific part (cumulative NeMo text diffed to
deltas, TRT-LLM deltas passed through). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steerlm.output import StopMatcher
from steerlm.transport.base import StreamEvent
from steerlm.transport.codecs import Codec

__all__ = ["Joiner", "StreamAssembler", "StreamChunk"]


@dataclass(frozen=True)
class StreamChunk:
    """One streamed delta; `finish_reason` is set on the last chunk only."""

    text: str
    finish_reason: str | None = None


class StreamAssembler:
    """Stream events of one prompt → delta chunks, cut at the first stop string."""

    def __init__(self, codec: Codec, stops: Sequence[str]) -> None:
        self._decoder = codec.stream_decoder(1, keep_texts=False)  # the text is kept here, once
        self._matcher = StopMatcher(stops)
        self._parts: list[str] = []
        self.done = False

    @property
    def text(self) -> str:
        """Everything yielded so far (the partial text of an interrupted stream)."""
        return "".join(self._parts)

    def feed(self, event: StreamEvent) -> list[StreamChunk]:
        """Chunks for one event; after a stop string or the final response, `done` is True."""
        delta = self._decoder.feed_one(event.outputs, final=event.final)
        safe = self._matcher.feed(delta)
        if self._matcher.stopped or event.final:
            return [self._close(safe)]
        if not safe:
            return []
        self._parts.append(safe)
        return [StreamChunk(safe)]

    def end(self) -> StreamChunk:
        """The last chunk when the stream ended without a final flag."""
        return self._close(self._matcher.feed(self._decoder.flush()[0]))

    def _close(self, safe: str) -> StreamChunk:
        stopped = self._matcher.stopped
        text = safe if stopped else safe + self._matcher.finish()
        stopped = stopped or self._matcher.stopped
        self._parts.append(text)
        self.done = True
        return StreamChunk(text, "stop" if stopped else "length")


class Joiner:
    """Collects a decoupled stream of `prompts`; `feed` says when the stream can be left.

    `whole=True` is for a request sent with `stream=false` to a decoupled model declaring a `stream`
    input (TRT-LLM): the server answers with whole, echoed texts (one response, plus PyTriton's empty
    final one), so stop strings are not watched (the prompt itself contains them) and the codec's echo
    strip is applied at the end. Otherwise the stream is read as deltas and left once every row has
    reached a stop string or the final response came.
    """

    def __init__(self, codec: Codec, prompts: Sequence[str], stops: Sequence[str], *, whole: bool = False) -> None:
        self._codec = codec
        self._prompts = prompts
        self._whole = whole
        self._decoder = codec.stream_decoder(len(prompts))
        self._matchers = [StopMatcher(stops) for _ in prompts] if stops and not whole else []

    def feed(self, event: StreamEvent) -> bool:
        deltas = self._decoder.feed(event.outputs, final=event.final)
        for matcher, delta in zip(self._matchers, deltas, strict=False):
            matcher.feed(delta)
        return event.final or (bool(self._matchers) and all(m.stopped for m in self._matchers))

    def texts(self) -> list[str]:
        self._decoder.flush()
        texts = list(self._decoder.texts)
        return self._codec.strip_prompt_echo(texts, self._prompts) if self._whole else texts
