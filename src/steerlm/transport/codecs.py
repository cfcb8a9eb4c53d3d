"""Signature codecs: the pure (numpy in, numpy out) half of the transport.

A codec knows one server signature: which tensors carry the prompt, the parameters and the answer,
how scalars are shaped (`[B,1]`, cast to the dtype the model *declares*), and how responses decode
(prompt echo, cumulative vs delta streaming, in-band `An error occurred:` rows). It never does I/O.
`make_codec(spec, signature)` picks one from the model's config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from steerlm._classify import in_band_error
from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.transport.base import Array, ModelSpec
from steerlm.transport.extra_inputs import extra_array
from steerlm.transport.param_inputs import ParamInput
from steerlm.transport.reports import ServerReport, check_logprobs, counts, reasons, value_entries
from steerlm.transport.tensors import bytes_matrix, rows_to_text, scalar_array

if TYPE_CHECKING:
    from steerlm.transport.stream_decoder import StreamDecoder

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "IN_BAND_ERROR_PREFIX",
    "Codec",
    "ParamInput",
    "bytes_matrix",
    "rows_to_text",
    "scalar_array",
]

IN_BAND_ERROR_PREFIX = "An error occurred:"
DEFAULT_MAX_TOKENS = 512  # sent only when the server *requires* a length input and none was given


class Codec:
    """Base of the signature codecs; subclasses fill the class-level tables and `_stop_array`."""

    name: ClassVar[str]
    prompt_input: ClassVar[str]
    text_output: ClassVar[str]
    marker_inputs: ClassVar[tuple[str, ...]] = ()  # inputs that must also be declared (tells look-alikes apart)
    cumulative_stream: ClassVar[bool]
    strips_echo: ClassVar[bool]
    params: ClassVar[tuple[ParamInput, ...]]
    stop_input: ClassVar[str] = ""  # "" for signatures that take no stop words
    generates_text: ClassVar[bool] = True  # False for scoring signatures (reward model)
    constant_inputs: ClassVar[Mapping[str, Any]] = {}  # sent whenever declared (e.g. logits=False)
    filled_inputs: ClassVar[tuple[str, ...]] = ()  # other inputs a subclass fills when required
    # optional report outputs -> the BOOL input that asks for each (both must be declared to be used)
    reported: ClassVar[Mapping[str, str]] = {}
    summed_counts: ClassVar[bool] = False  # num_output_tokens arrives per response (deltas) when True
    server_stops: ClassVar[bool] = False  # the server honours stop strings (and excludes them)
    logprob_output: ClassVar[str] = ""  # the output holding per-token log-probabilities, if any
    guided_inputs: ClassVar[tuple[str, ...]] = ()  # inputs that carry a guided-decoding guide (all declared: used)
    takes_body: ClassVar[bool] = False  # GenerationParams.extra_body is merged into the request (OpenAI JSON)

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        missing = [n for n, ok in ((self.prompt_input, spec.inputs), (self.text_output, spec.outputs))
                   if n not in ok]
        if missing:
            raise ConfigurationError(
                f"model {spec.name!r} does not have the {self.name} signature (needs "
                f"{self.prompt_input!r} in and {self.text_output!r} out; missing {missing}); "
                f"the server declares {spec.describe()}"
            )
        self._resolved = {p.field: next((n for n in p.names if n in spec.inputs), None) for p in self.params}
        self._reported = {o: f for o, f in self.reported.items() if o in spec.outputs and f in spec.inputs}
        known = {self.prompt_input, self.stop_input, "stream", *self.constant_inputs, *self.filled_inputs,
                 *self.reported.values(), *(n for p in self.params for n in p.names)}
        unknown = [t.name for t in spec.inputs.values() if not t.optional and t.name not in known]
        if unknown:
            raise ConfigurationError(
                f"model {spec.name!r} requires inputs steerlm cannot fill: {unknown}; "
                f"the server declares {spec.describe()}"
            )

    @property
    def outputs(self) -> tuple[str, ...]:
        """The outputs asked for: the text plus the declared report outputs (finish reason, counts)."""
        return (self.text_output, *self._reported)

    @property
    def takes_logprobs(self) -> bool:
        """Whether this model can return per-token log-probabilities (`GenerationParams.logprobs`)."""
        return bool(self.logprob_output) and self.logprob_output in self.spec.outputs

    @property
    def takes_guided(self) -> bool:
        """Whether this model declares guided decoding (`GenerationParams.guided_json` is enforced by the
        server); else the guide is not sent and the prompted protocol is the fallback."""
        return bool(self.guided_inputs) and all(name in self.spec.inputs for name in self.guided_inputs)

    @property
    def takes_top_logprobs(self) -> bool:
        """Whether this model can also list the most likely tokens at each position (`top_logprobs`)."""
        return False

    def outputs_for(self, params: GenerationParams) -> tuple[str, ...]:
        """`outputs`, plus the log-probability output(s) when `params` asks for them."""
        if params.wants_logprobs and self.takes_logprobs:
            return (*self.outputs, *self.logprob_outputs(params))
        return self.outputs

    def logprob_outputs(self, params: GenerationParams) -> tuple[str, ...]:
        """The outputs holding the log-probabilities `params` asks for."""
        return (self.logprob_output,)

    def encode_prompts(self, prompts: Sequence[str]) -> dict[str, Array]:
        """The prompt tensor: UTF-8 bytes, `[B,1]`."""
        arr = np.empty((len(prompts), 1), dtype=np.object_)
        arr[:, 0] = [p.encode("utf-8") for p in prompts]
        return {self.prompt_input: arr}

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        """Every non-prompt input for `batch` rows, plus the names of set fields that were dropped.

        Only declared inputs are produced; each is cast to its declared dtype. Raises
        ConfigurationError for a set field the model cannot take when dropping it changes semantics.
        """
        if params.extra_body is not None and not self.takes_body:
            raise ConfigurationError(
                f"extra_body is merged into an OpenAI-compatible request's JSON; model {self.spec.name!r} has the "
                f"{self.name} signature: pass its extra inputs by name (extra inputs / model_kwargs) instead")
        inputs = self.spec.inputs
        out: dict[str, Array] = {}
        dropped: list[str] = []
        for p in self.params:
            value = getattr(params, p.field)
            name = self._resolved[p.field]
            if name is None:
                if value is not None and p.on_missing == "error":
                    raise ConfigurationError(
                        f"model {self.spec.name!r} cannot take {p.field} (declares none of "
                        f"{list(p.names)}); unset it. The server declares {self.spec.describe()}"
                    )
                if value is not None:
                    dropped.append(p.field)
                continue
            if value is None and not inputs[name].optional:
                value = p.default
            if value is not None:
                out[name] = scalar_array(inputs[name], value, batch)
        for name, value in self.constant_inputs.items():
            if name in inputs:
                out[name] = scalar_array(inputs[name], value, batch)
        if "stream" in inputs:
            out["stream"] = scalar_array(inputs["stream"], stream, batch)
        for flag in self._reported.values():
            out[flag] = scalar_array(inputs[flag], True, batch)
        check_logprobs(self.spec, self.name, params, self.takes_logprobs, self.takes_top_logprobs)
        if self.stop_input in inputs and (stops or not inputs[self.stop_input].optional):
            out[self.stop_input] = self._stop_array(stops, batch)
        self._add_extra_inputs(out, params.extra_inputs, batch)
        return out, dropped

    def _add_extra_inputs(self, out: dict[str, Array], extra: Sequence[tuple[str, Any]], batch: int) -> None:
        """`GenerationParams.extra_inputs`, each in its declared dtype; ConfigurationError naming the declared
        inputs for an undeclared name, or for one a parameter already sets."""
        inputs = self.spec.inputs
        for name, value in extra:
            if name not in inputs:
                raise ConfigurationError(
                    f"model {self.spec.name!r} declares no input {name!r} (extra inputs / model_kwargs); its "
                    f"inputs are {sorted(inputs)}")
            if name in out or name == self.prompt_input:
                raise ConfigurationError(f"input {name!r} is set by a generation parameter or the prompt; use "
                                         "that parameter instead of an extra input")
            out[name] = extra_array(inputs[name], value, batch, batched=self.spec.max_batch_size > 0)

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        raise NotImplementedError

    def read_reports(self, outputs: Mapping[str, Array], reports: Sequence[ServerReport]) -> None:
        """Update one report per row from a response's finish-reason, count and log-probability outputs."""
        rows = len(reports)
        finish = outputs.get("finish_reason")
        if finish is not None:
            for report, reason in zip(reports, reasons(finish, rows), strict=False):
                report.finish_reason = reason or report.finish_reason
        given = outputs.get("num_input_tokens")
        if given is not None:
            for report, count in zip(reports, counts(given, rows), strict=False):
                report.input_tokens = count if count is not None else report.input_tokens
        made = outputs.get("num_output_tokens")
        if made is not None:
            for report, count in zip(reports, counts(made, rows), strict=False):
                if count is not None:
                    report.output_tokens = (report.output_tokens or 0) + count if self.summed_counts else count
        if self.logprob_output:
            parsed = self.parse_logprobs(outputs, rows)
            for report, values in zip(reports, parsed or (), strict=False):
                report.add_logprobs(values)

    def parse_logprobs(self, outputs: Mapping[str, Array], rows: int) -> list[list[TokenLogprob]] | None:
        """Per-row entries from the log-probability output(s) (None: not in this response); the default reads
        numeric `[B, T]` values (the tokens are named from the text: `steerlm.logprobs.align`)."""
        array = outputs.get(self.logprob_output)
        return None if array is None else value_entries(array, rows)

    def check_in_band(self, texts: Sequence[str]) -> None:
        """Raise when any row is the server's in-band `An error occurred:` (InvalidRequestError, or
        ContextWindowExceededError for an "input too long" message)."""
        for text in texts:
            if text.startswith(IN_BAND_ERROR_PREFIX):
                raise in_band_error(text[len(IN_BAND_ERROR_PREFIX):].strip(), self.spec.name)

    def decode(self, outputs: Mapping[str, Array], prompts: Sequence[str]) -> list[str]:
        """One completion per prompt, in order (prompt echo removed where the signature echoes)."""
        if self.text_output not in outputs:
            raise InvalidRequestError(
                f"the server returned no {self.text_output!r} output (got {sorted(outputs)})",
                model=self.spec.name,
            )
        texts = rows_to_text(outputs[self.text_output])
        self.check_in_band(texts)
        if len(texts) != len(prompts):
            raise InvalidRequestError(
                f"the server returned {len(texts)} rows for {len(prompts)} prompts", model=self.spec.name
            )
        return self.strip_prompt_echo(texts, prompts)

    def strip_prompt_echo(self, texts: Sequence[str], prompts: Sequence[str]) -> list[str]:
        """`texts` without a leading copy of their prompt, for signatures that echo it."""
        if not self.strips_echo:
            return list(texts)
        return [t[len(p):] if p and t.startswith(p) else t for t, p in zip(texts, prompts, strict=True)]

    @property
    def has_stream_flag(self) -> bool:
        """Whether the model declares a `stream` input (TRT-LLM): unset, a decoupled model answers
        with one whole (echoed) response instead of per-token deltas."""
        return "stream" in self.spec.inputs

    def stream_decoder(self, rows: int, *, keep_texts: bool = True) -> StreamDecoder:
        from steerlm.transport.stream_decoder import StreamDecoder

        return StreamDecoder(self, rows, keep_texts=keep_texts)
