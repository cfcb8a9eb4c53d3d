"""Stream assembly, shared by every transport that streams (gRPC, HTTP generate extension), sync and async.

`StreamAssembler` turns the events of one prompt's stream into `StreamChunk` deltas through the
StopMatcher, so nothing past a stop string is ever yielded; it keeps the deltas (joined only when the
partial text of an interrupted stream is asked for), never a growing copy of the text. `Joiner`
collects a decoupled stream of one request (one or more prompts) into whole texts for `generate` /
`batch`. The codec's stream decoder does the signature-specific part (cumulative NeMo text diffed to
deltas, TRT-LLM deltas passed through) and reads the server's reports (finish reason, token counts).
Pure: no I/O.

A server that honours stop strings itself (vLLM) leaves them out: its reply ends ``…answer.\n`` with
finish reason ``stop``. `server_cut` gives back the stop string it removed, so the matcher cuts
``…answer.\n<extra_id_1>`` exactly as when the client cuts it (the newline before a stop is dropped); the
matcher holds a trailing newline back until the next delta or the end, so streams agree too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steerlm.logprobs import TokenLogprob, trimmed
from steerlm.output import StopMatcher
from steerlm.transport.base import StreamEvent
from steerlm.transport.codecs import Codec
from steerlm.transport.reports import RawAnswer, ServerReport
from steerlm.usage import TokenUsage

__all__ = ["Joiner", "StreamAssembler", "StreamChunk", "finish_reason", "server_cut"]

_new = object.__new__


def server_cut(codec: Codec, report: ServerReport, stops: Sequence[str]) -> str:
    """The stop string a server-side stop removed (to be appended back before cleaning), else ``""``."""
    return stops[0] if codec.server_stops and stops and report.finish_reason == "stop" else ""


def finish_reason(stopped: bool, report: ServerReport) -> str:
    """``stop`` when a stop string ended the text, else the server's reason, else ``length``."""
    return "stop" if stopped else report.finish_reason or "length"


@dataclass(frozen=True)
class StreamChunk:
    """One streamed delta; `finish_reason` is set on the last chunk only, and so is `usage` (the
    server's token counts, when it reports them). `logprobs` holds the log-probabilities that arrived
    since the previous chunk (when they were asked for): together, a stream's chunks hold every one."""

    text: str
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None

    @classmethod
    def delta(cls, text: str) -> StreamChunk:
        """A chunk in the middle of a stream (no finish reason, no usage): equal to ``StreamChunk(text)``,
        built without the frozen dataclass's per-field ``object.__setattr__`` (once per token)."""
        chunk = object.__new__(cls)
        chunk.__dict__["text"] = text
        return chunk


class StreamAssembler:
    """Stream events of one prompt → delta chunks, cut at the first stop string."""

    def __init__(self, codec: Codec, stops: Sequence[str], top: int = 0) -> None:
        self._codec = codec
        self._stops = stops
        self._top = top  # alternatives kept per position (`top_logprobs`)
        self._given = 0  # log-probability entries already handed out
        self._decoder = codec.stream_decoder(1, keep_texts=False)  # the text is kept here, once
        self._decode = self._decoder.feed_one  # bound once: the per-token path calls these
        self._matcher = StopMatcher(stops)
        self._match = self._matcher.feed
        self.report = ServerReport()
        self._reports = [self.report]
        self._parts: list[str] = []
        self._keep = self._parts.append
        self._logprobs = False  # whether the server reported log-probabilities (only when asked)
        self.done = False

    @property
    def text(self) -> str:
        """Everything yielded so far (the partial text of an interrupted stream)."""
        return "".join(self._parts)

    def feed(self, event: StreamEvent) -> list[StreamChunk]:
        """Chunks for one event; after a stop string or the final response, `done` is True."""
        outputs, final = event.outputs, event.final
        delta = self._decode(outputs, final)
        if len(outputs) > 1:  # more than the text: the server's reports (finish reason, counts, logprobs)
            self._codec.read_reports(outputs, self._reports)
            self._logprobs = self.report.logprobs is not None
        if final:
            delta += server_cut(self._codec, self.report, self._stops)
        safe = self._match(delta)
        if final or self._matcher.stopped:
            return [self._close(safe)]
        if not safe:
            return []
        self._keep(safe)
        if self._logprobs:
            return [StreamChunk(safe, logprobs=self._new_logprobs())]
        chunk = _new(StreamChunk)  # `StreamChunk.delta(safe)` without the call (once per token)
        chunk.__dict__["text"] = safe
        return [chunk]

    def _new_logprobs(self) -> tuple[TokenLogprob, ...] | None:
        """The entries that arrived since the last chunk (None when none did)."""
        entries = self.report.logprobs
        if entries is None or len(entries) == self._given:
            return None
        new, self._given = entries[self._given:], len(entries)
        return trimmed(new, self._top)

    def end(self) -> StreamChunk:
        """The last chunk when the stream ended without a final flag."""
        tail = self._decoder.flush()[0] + server_cut(self._codec, self.report, self._stops)
        return self._close(self._matcher.feed(tail))

    def _close(self, safe: str) -> StreamChunk:
        stopped = self._matcher.stopped
        text = safe if stopped else safe + self._matcher.finish()
        stopped = stopped or self._matcher.stopped
        self._parts.append(text)
        self.done = True
        return StreamChunk(text, finish_reason(stopped, self.report), self.report.usage, self._new_logprobs())


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
        self.reports = [ServerReport() for _ in prompts]

    def feed(self, event: StreamEvent) -> bool:
        deltas = self._decoder.feed(event.outputs, final=event.final)
        self._codec.read_reports(event.outputs, self.reports)
        for matcher, delta in zip(self._matchers, deltas, strict=False):
            matcher.feed(delta)
        return event.final or (bool(self._matchers) and all(m.stopped for m in self._matchers))

    def texts(self) -> list[str]:
        return [answer.text for answer in self.answers()]

    def answers(self) -> list[RawAnswer]:
        """The joined texts (echo stripped for `whole` answers) with their reports."""
        self._decoder.flush()
        texts = list(self._decoder.texts)
        if self._whole:
            texts = self._codec.strip_prompt_echo(texts, self._prompts)
        return [RawAnswer(t, r) for t, r in zip(texts, self.reports, strict=True)]
