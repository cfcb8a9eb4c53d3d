"""The pure half of the client, shared by `SteerLMClient` and `AsyncSteerLMClient`.

`ClientCore` holds the settings (`ClientSettings`), owns the model spec and codec once they are read, plans
requests (stop strings, parameter arrays cached per parameter set, batches split by the model's
`max_batch_size`) and turns decoded text into `Completion`s. Stream events become chunks or whole
texts in `steerlm.transport.assembly` (`StreamAssembler`, `Joiner`; re-exported here). None of it
does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steerlm.errors import ConfigurationError, PromptError, StreamInterruptedError, TritonError
from steerlm.logprobs import TokenLogprob, align, trimmed
from steerlm.output import clean_completion
from steerlm.params import GenerationParams
from steerlm.retry import RetryPolicy
from steerlm.transport.assembly import Joiner, StreamAssembler, StreamChunk, finish_reason, server_cut
from steerlm.transport.base import Array, FixedInputs, ModelSpec, WireRequest, spec_from_config
from steerlm.transport.codecs import Codec
from steerlm.transport.reports import RawAnswer, ServerReport
from steerlm.transport.signatures import make_codec
from steerlm.usage import TokenUsage

if TYPE_CHECKING:
    from steerlm.client.settings import CallOptions, ClientSettings

__all__ = [
    "ClientCore",
    "Completion",
    "Joiner",
    "PlannedRequest",
    "StreamAssembler",
    "StreamChunk",
    "clean",
    "interrupted",
    "not_utf8",
]

logger = logging.getLogger("steerlm.client")
_CACHE_SIZE = 64


@dataclass(frozen=True)
class Completion:
    """One finished generation: cleaned text, why it ended, the model and the prompt sent.

    `usage` holds the server's token counts when it reports them (else None; a local tokenizer in the
    adapters can count instead). `logprobs` holds one `TokenLogprob` per generated token (its text,
    log-probability and, with `top_logprobs`, the likeliest alternatives) when they were asked for
    (`GenerationParams(logprobs=True)`).
    """

    text: str
    finish_reason: str
    model: str
    prompt: str
    usage: TokenUsage | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True)
class PlannedRequest:
    """One wire request and the prompts it carries (at most `max_batch_size` of them)."""

    prompts: tuple[str, ...]
    wire: WireRequest
    stream: bool = False  # the value sent in a declared `stream` input


def clean(raw: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`clean_completion(raw, stops)`, skipped when it cannot change anything (the hot path): no stop
    string in the text and no `<` in its last 11 characters (where marker residue could dangle).
    tests/unit/test_codecs.py checks the equivalence."""
    if "<" not in raw[-11:] and not any(stop in raw for stop in stops):
        return raw, False
    return clean_completion(raw, stops)


def interrupted(exc: TritonError, partial_text: str) -> StreamInterruptedError:
    """The error for a stream that failed after its first chunk (never retried)."""
    return StreamInterruptedError(
        f"stream interrupted after {len(partial_text)} characters: {exc}",
        partial_text=partial_text, status=exc.status, model=exc.model,
    )


def not_utf8(prompts: Sequence[str]) -> PromptError | None:
    """The error for the first prompt holding a lone surrogate (text decoded with ``surrogateescape``, or
    cut in the middle of a pair), or None. ASCII prompts cost one `str.isascii` each."""
    for index, prompt in enumerate(prompts):
        if prompt.isascii():
            continue
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as bad:
            return PromptError(
                f"prompt {index} cannot be sent as UTF-8: it holds a lone surrogate (U+{ord(prompt[bad.start]):04X} "
                f"at position {bad.start}); remove it, or decode the text with errors='replace'"
            )
    return None


class ClientCore:
    """Validated settings plus the per-model state (spec, codec, parameter-array cache)."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.model = settings.model
        self.endpoints = settings.endpoints
        self._http = any(e.protocol == "http" for e in self.endpoints)
        self.profile = settings.profile
        self.stream_timeout = settings.stream_timeout
        self.policy = RetryPolicy(settings.max_retries)
        self.signature = settings.signature
        self.spec: ModelSpec | None = None
        self.codec: Codec | None = None
        self.config: Mapping[str, Any] | None = None
        self._fixed: dict[tuple[GenerationParams, int, bool], FixedInputs] = {}
        self._last_fixed: tuple[GenerationParams, int, bool, FixedInputs] | None = None
        self._last_stops: tuple[GenerationParams, tuple[str, ...]] | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ endpoints and spec
    @property
    def decoupled(self) -> bool:
        """Whether the model is decoupled (streaming-only: every request goes out as a stream)."""
        return self.spec is not None and self.spec.decoupled

    @property
    def unbatched(self) -> bool:
        """Whether each request carries one prompt (no batch dimension, or a decoupled model over HTTP):
        a batch is then sent as concurrent requests."""
        assert self.spec is not None
        return self.spec.max_batch_size == 0 or (self.spec.decoupled and self._http)

    def install(self, config: Mapping[str, Any]) -> None:
        """Read the model config: spec, codec (detected unless `signature` was given). A config equal to
        the installed one (the same model after a restart) changes nothing."""
        if config == self.config:
            return
        spec = spec_from_config(config, self.model)
        codec = make_codec(spec, self.signature)
        if self.signature is None and not codec.generates_text:
            raise ConfigurationError(f"model {self.model!r} has the {codec.name} signature ({codec.prompt_input} -> "
                                     f"{codec.text_output}), not a text generator; score conversations with "
                                     "steerlm.RewardModel")
        self.codec, self.spec, self.config = codec, spec, config
        self._fixed, self._last_fixed = {}, None
        logger.debug("model %r: %s signature, decoupled=%s, max_batch_size=%d; %s", self.model,
                     self.codec.name, spec.decoupled, spec.max_batch_size, spec.describe())

    def warn_once(self, key: str, message: str, *args: Any, level: int = logging.WARNING) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.log(level, message, *args)

    # ------------------------------------------------------------------ planning
    def params(self, params: GenerationParams | None) -> GenerationParams:
        if params is None:
            return GenerationParams()
        if not isinstance(params, GenerationParams):
            raise ConfigurationError(f"params must be a GenerationParams, got {type(params).__name__}")
        return params

    def one(self, prompt: str) -> str:
        if not isinstance(prompt, str):
            raise ConfigurationError(f"prompt must be a string, got {type(prompt).__name__}")
        if not prompt.isascii() and (error := not_utf8([prompt])) is not None:
            raise error
        return prompt

    def stops(self, params: GenerationParams) -> tuple[str, ...]:
        last = self._last_stops  # as in `_fixed_for`: the same GenerationParams object call after call
        if last is not None and last[0] is params:
            return last[1]
        own = self.profile.stop_strings if self.profile is not None else ()
        stops = tuple(dict.fromkeys((*own, *params.stop)))
        self._last_stops = (params, stops)
        return stops

    def plan(self, prompts: Sequence[str], params: GenerationParams, *, stream: bool,
             call: CallOptions | None = None) -> list[PlannedRequest]:
        """The wire requests for `prompts` (split by max_batch_size), in order. A decoupled model with
        an HTTP endpoint gets one prompt per request: Triton's generate extension has no batching."""
        assert self.codec is not None and self.spec is not None
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise ConfigurationError("prompts must be a sequence of strings (rendered prompts)")
        size = 1 if self.spec.decoupled and self._http else max(self.spec.max_batch_size, 1)
        out = []
        for start in range(0, len(prompts), size):
            chunk = tuple(prompts[start:start + size])
            try:
                encoded = self.codec.encode_prompts(chunk)
            except UnicodeEncodeError:
                raise not_utf8(chunk) or PromptError("a prompt cannot be sent as UTF-8") from None
            timeout, headers = self.per_call(call)
            fixed = self._fixed_for(params, len(chunk), stream)
            wire = WireRequest(model=self.model, inputs=encoded, fixed=fixed, timeout=timeout, headers=headers)
            out.append(PlannedRequest(prompts=chunk, wire=wire, stream=stream))
        return out

    def per_call(self, call: CallOptions | None) -> tuple[float | None, Mapping[str, str] | None]:
        """A request's own timeout and complete headers (None: the connection's)."""
        if call is None:
            return None, None
        return call.timeout, (self.settings.headers.merged(call.headers) if call.headers is not None else None)

    def raw(self, inputs: Mapping[str, Array], outputs: Sequence[str] | None, call: CallOptions | None) -> WireRequest:
        """A request of caller-built tensors (`request()`); `outputs` None asks for every declared output."""
        assert self.spec is not None
        fixed = FixedInputs({}, tuple(self.spec.outputs if outputs is None else outputs))
        return WireRequest(self.model, dict(inputs), fixed, *self.per_call(call))

    def _fixed_for(self, params: GenerationParams, rows: int, stream: bool) -> FixedInputs:
        last = self._last_fixed  # an adapter sends the same GenerationParams object call after call
        if last is not None and last[0] is params and last[1] == rows and last[2] is stream:
            return last[3]
        key = (params, rows, stream)
        fixed = self._fixed.get(key)
        if fixed is None:
            assert self.codec is not None
            arrays, dropped = self.codec.encode_params(params, self.stops(params), rows, stream=stream)
            for name in dropped:
                self.warn_once(f"drop:{name}", "model %r declares no input for %s; it is not sent "
                               "(the server's default applies)", self.model, name)
            if len(self._fixed) >= _CACHE_SIZE:
                self._fixed.clear()
            fixed = self._fixed[key] = FixedInputs(arrays, self.codec.outputs_for(params))
        self._last_fixed = (params, rows, stream, fixed)
        return fixed

    def streams_natively(self) -> bool:
        """True for a decoupled model (a real stream); else streaming sends one unary request."""
        assert self.spec is not None
        if not self.spec.decoupled:
            self.warn_once("onechunk", "model %r is not decoupled: streaming returns the whole answer as "
                           "one chunk", self.model, level=logging.INFO)
        return self.spec.decoupled

    # ------------------------------------------------------------------ results
    def decode(self, request: PlannedRequest, outputs: Mapping[str, Any]) -> list[RawAnswer]:
        assert self.codec is not None
        texts = self.codec.decode(outputs, request.prompts)
        reports = [ServerReport() for _ in texts]
        self.codec.read_reports(outputs, reports)
        return [RawAnswer(t, r) for t, r in zip(texts, reports, strict=True)]

    def completions(
        self, prompts: Sequence[str], answers: Sequence[RawAnswer], stops: Sequence[str], top: int = 0
    ) -> list[Completion]:
        """The cleaned completions; log-probability entries get their tokens named from the raw text
        (`steerlm.logprobs.align`) and at most `top` alternatives each."""
        assert self.codec is not None
        out = []
        for prompt, answer in zip(prompts, answers, strict=True):
            report = answer.report
            text, stopped = clean(answer.text + server_cut(self.codec, report, stops), stops)
            logprobs = None if report.logprobs is None else trimmed(align(report.logprobs, answer.text), top)
            out.append(Completion(text=text, finish_reason=finish_reason(stopped, report), model=self.model,
                                  prompt=prompt, usage=report.usage, logprobs=logprobs))
        return out

    def assembler(self, stops: Sequence[str], top: int = 0) -> StreamAssembler:
        assert self.codec is not None
        return StreamAssembler(self.codec, stops, top)

    def joiner(self, request: PlannedRequest, stops: Sequence[str]) -> Joiner:
        assert self.codec is not None
        return Joiner(self.codec, request.prompts, stops, whole=self.codec.has_stream_flag and not request.stream)
