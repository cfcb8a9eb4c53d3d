"""The OpenAI-compatible ``/v1/completions`` wire format: the pure half (bodies, answers, SSE chunks, errors).

Shared by the blocking and the asyncio connection; no I/O.

* `RequestParts` turns a `WireRequest` (the `OpenAICodec`'s arrays) into the JSON fields of a request:
  ``model``, ``max_tokens``, the sampling fields that were set, ``stop`` (at most `MAX_STOPS`: the
  OpenAI limit; the client enforces all of them anyway) and, for a stream, ``stream`` +
  ``stream_options: {include_usage: true}``. The prompt goes in as a string, or as a list of strings
  for a batch where the server takes lists.
* `read_answer` reads a JSON answer into the codec's outputs; `ChunkReader` reads the SSE chunks of one
  streamed prompt (``data: [DONE]`` or the end of the body ends it; a JSON answer to a stream request,
  from a server that ignores ``stream``, is one whole chunk).
* The answer's ``finish_reason`` and ``usage`` become the report outputs every codec reads
  (`steerlm.transport.reports`): ``finish_reason``, ``num_input_tokens``, ``num_output_tokens`` — the
  counts only where they belong to one prompt (a list request's usage is the total of the batch). A
  server-side stop (``"…answer.\\n"``, ``finish_reason: "stop"``) is cleaned by the client like its own
  cut (`steerlm.transport.assembly.server_cut`).
* A server that refuses ``response_format`` (`format_refused`) gets the request again without it, and no
  ``response_format`` from then on (`common.Target.formats`); a WARNING says so once.
* Errors: a non-2xx answer raises `OpenAIStatusError` (``status``, ``message``, ``headers``: the shape
  `steerlm.errors.classify` reads). The message is taken from ``{"error": {"message": …}}`` (OpenAI,
  vLLM), ``{"message": …}``, or ``{"detail": …}`` (FastAPI servers: transformers serve, NeMo Ray).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steerlm.errors import InvalidRequestError
from steerlm.logprobs import TokenLogprob
from steerlm.transport.base import Array, StreamEvent, WireRequest
from steerlm.transport.codecs import rows_to_text

__all__ = [
    "MAX_STOPS",
    "ChunkReader",
    "OpenAIStatusError",
    "RequestParts",
    "error_message",
    "format_refused",
    "list_refused",
    "model_ids",
    "read_answer",
]

MAX_STOPS = 4
_KEY = "openai"  # FixedInputs.prebuilt key of the JSON fields of one parameter set
_SAMPLING = ("temperature", "top_p", "top_k", "seed", "repetition_penalty")


class OpenAIStatusError(Exception):
    """A non-2xx answer (`status`), or an ``{"error": …}`` event inside a stream (`status` from its code).

    `retryable_statuses` tells `steerlm.errors.classify` to retry 409 and every 5xx but 501 too (as the
    OpenAI SDK does; 408, 429, 502–504 and connection errors are retried for every transport).
    """

    retryable_statuses = frozenset({"409", *(str(code) for code in range(500, 600) if code != 501)})

    def __init__(self, status: int | None, message: str, headers: Any = None) -> None:
        super().__init__(f"[{status}] {message}" if status is not None else message)
        self.status = status
        self.message = message
        self.headers: Any = headers if headers is not None else {}


def _scalar(array: Array) -> Any:
    item = np.asarray(array).reshape(-1)[0]
    return item.item() if isinstance(item, np.generic) else item


def _stops(array: Array | None) -> list[str]:
    if array is None:
        return []
    row = np.asarray(array).reshape(np.asarray(array).shape[0], -1)[0]
    return [w for w in (v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in row) if w]


class RequestParts:
    """The JSON fields of one request (see the module docstring); cached per parameter set."""

    __slots__ = ("fields", "headers", "prompts", "stream", "timeout")

    fields: dict[str, Any]
    stream: bool

    def __init__(self, request: WireRequest) -> None:
        fixed = request.fixed
        cached = fixed.prebuilt.get(_KEY)
        if cached is None:
            arrays = fixed.arrays
            fields: dict[str, Any] = {"model": request.model}
            for name in ("max_tokens", *_SAMPLING):
                if name in arrays:
                    fields[name] = _scalar(arrays[name])
            stops = _stops(arrays.get("stop"))
            if stops:
                fields["stop"] = stops[:MAX_STOPS]
            if "logprobs" in arrays:
                fields["logprobs"] = int(_scalar(arrays["logprobs"]))  # how many likely tokens to list
            if "response_format" in arrays:  # guided decoding (steerlm.transport.openai.body)
                fields["response_format"] = json.loads(_scalar(arrays["response_format"]))
            if "extra_body" in arrays:  # extra inputs / extra_body, checked against the fields above
                fields.update(json.loads(_scalar(arrays["extra_body"])))
            stream = bool(_scalar(arrays["stream"])) if "stream" in arrays else False
            if stream:
                fields["stream"] = True
                fields["stream_options"] = {"include_usage": True}
            cached = fixed.prebuilt[_KEY] = (fields, stream)
        self.fields, self.stream = cached
        self.prompts = rows_to_text(request.inputs["prompt"])
        self.timeout = request.timeout  # this request's own (per-call options); None: the connection's
        self.headers = request.headers

    def body(self, prompt: str | Sequence[str], *, formats: bool = True) -> bytes:
        """The request body for one prompt (a string) or several (a list); without ``response_format`` when
        `formats` is False (a server that refuses the field: `format_refused`)."""
        data = {**self.fields, "prompt": prompt if isinstance(prompt, str) else list(prompt)}
        if not formats:
            data.pop("response_format", None)
        return json.dumps(data, ensure_ascii=False).encode("utf-8")


def format_refused(status: int, message: str) -> bool:
    """Whether an error answer refuses the ``response_format`` field itself (transformers serve: 422
    "Unexpected fields in the request: {'response_format'}"; a 400 naming the field), so the request is
    sent again without it (guided decoding is then not available: the prompted protocol is the fallback)."""
    return status in (400, 422) and "response_format" in message


def error_message(raw: bytes) -> str:
    """The server's message in an error answer (OpenAI, vLLM and FastAPI shapes), else the text."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or "(empty body)"
    return _message_in(data) or text[:500]


def _message_in(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, Mapping):
        return None
    for key in ("error", "message", "detail"):
        value = data.get(key)
        if isinstance(value, Mapping):
            inner = _message_in(value)
            if inner:
                return inner
        elif isinstance(value, str) and value:
            return value
        elif isinstance(value, list) and value:  # FastAPI validation errors
            return "; ".join(str(v.get("msg", v)) if isinstance(v, Mapping) else str(v) for v in value)
    return None


def list_refused(status: int, message: str) -> bool:
    """Whether an error answer to a *list* prompt means "send one prompt per request" (transformers
    serve: 400 "prompt must be a string."; FastAPI validation: 422 about ``prompt``; NeMo Ray's
    deployables fail list prompts with a 500)."""
    lowered = message.lower()
    return status >= 500 or (400 <= status < 500 and "prompt" in lowered and ("string" in lowered
                                                                                  or " str" in lowered))


def model_ids(raw: bytes) -> list[str] | None:
    """The ids of a ``GET /models`` answer (None when the body is not a model list)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    entries = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        return None
    return [str(e["id"]) for e in entries if isinstance(e, Mapping) and "id" in e]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _token_logprobs(choice: Mapping[str, Any]) -> list[TokenLogprob] | None:
    """``choice.logprobs`` (``tokens``, ``token_logprobs``, ``top_logprobs``: one ``{token: logprob}`` per
    position) as `TokenLogprob`s, alternatives most likely first; None when the server sent none."""
    logprobs = choice.get("logprobs")
    values = logprobs.get("token_logprobs") if isinstance(logprobs, Mapping) else None
    if not isinstance(logprobs, Mapping) or not isinstance(values, list):
        return None
    given_tokens, given_tops = logprobs.get("tokens"), logprobs.get("top_logprobs")
    tokens: list[Any] = given_tokens if isinstance(given_tokens, list) else []
    tops: list[Any] = given_tops if isinstance(given_tops, list) else []
    out = []
    for index, value in enumerate(values):
        if not _number(value):
            continue  # vLLM's null for a position it could not score
        listed = tops[index] if index < len(tops) and isinstance(tops[index], Mapping) else {}
        top = sorted(((str(t), float(v)) for t, v in listed.items() if _number(v)), key=lambda p: -p[1])
        token = tokens[index] if index < len(tokens) else ""
        out.append(TokenLogprob(str(token), float(value), tuple(top)))
    return out


def _cells(values: Sequence[Any]) -> Array:
    out = np.empty((len(values), 1), dtype=np.object_)
    out[:, 0] = list(values)
    return out


def _outputs(texts: Sequence[str], reasons: Sequence[str | None] | None = None, usage: Any = None,
             logprobs: Sequence[list[TokenLogprob] | None] = ()) -> dict[str, Array]:
    """The codec's outputs for `texts`: ``text``, plus ``finish_reason``, the token counts and the
    log-probabilities when known."""
    rows = len(texts)
    out: dict[str, Array] = {"text": _cells([t.encode("utf-8") for t in texts])}
    if any(values is not None for values in logprobs):
        out["token_logprobs"] = _cells([values or [] for values in logprobs])
    if reasons is not None:
        out["finish_reason"] = _cells([(r or "").encode("utf-8") for r in reasons])
    counts = usage if isinstance(usage, Mapping) and rows == 1 else {}  # a list's usage is the batch total
    for name, key in (("num_input_tokens", "prompt_tokens"), ("num_output_tokens", "completion_tokens")):
        value = counts.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = np.full((rows, 1), value, dtype=np.int64)
    return out


def _json(raw: bytes, model: str) -> Mapping[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequestError(f"the OpenAI-compatible server sent a body that is not JSON: {raw[:200]!r}",
                                  model=model) from None
    if not isinstance(data, Mapping):
        raise InvalidRequestError(f"unexpected answer from the OpenAI-compatible server: {str(data)[:200]}",
                                  model=model)
    return data


def read_answer(raw: bytes, rows: int, model: str) -> dict[str, Array] | None:
    """The outputs of a JSON completions answer for `rows` prompts; None when the server answered a
    different number of choices (a list prompt it does not take: send one prompt per request)."""
    data = _json(raw, model)
    choices = data.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, Mapping) for c in choices):
        raise InvalidRequestError(f"the answer has no 'choices' list: {str(data)[:200]}", model=model)
    if len(choices) != rows:
        return None
    ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
    texts = [str(choice.get("text") or "") for choice in ordered]
    reasons = [r if isinstance(r := choice.get("finish_reason"), str) else None for choice in ordered]
    return _outputs(texts, reasons, data.get("usage"), [_token_logprobs(choice) for choice in ordered])


class ChunkReader:
    """The SSE chunks of one streamed prompt → `StreamEvent`s: text deltas, then one final event with
    the finish reason and usage (usage comes in a chunk of its own, after the finish reason)."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._reason: str | None = None
        self._usage: Any = None
        self.done = False

    def feed(self, payload: str) -> StreamEvent | None:
        """The event for one ``data:`` payload (None: nothing to pass on); ``[DONE]`` sets `done`."""
        if payload.strip() == "[DONE]":
            self.done = True
            return None
        data = _json(payload.encode("utf-8"), self._model)
        if "error" in data:
            error = data["error"]
            code = error.get("code") if isinstance(error, Mapping) else None
            raise OpenAIStatusError(code if isinstance(code, int) else None, _message_in(data) or str(error))
        if data.get("usage"):
            self._usage = data["usage"]
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
        if choice.get("finish_reason"):
            self._reason = str(choice["finish_reason"])
        delta = str(choice.get("text") or "")
        return StreamEvent(_outputs([delta], logprobs=[_token_logprobs(choice)]), final=False) if delta else None

    def whole(self, raw: bytes) -> StreamEvent:
        """A JSON answer to a stream request (the server ignores ``stream``): one final event."""
        outputs = read_answer(raw, 1, self._model)
        if outputs is None:
            raise InvalidRequestError("the server answered one prompt with several choices", model=self._model)
        self.done = True
        return StreamEvent(outputs, final=True)

    def end(self) -> StreamEvent:
        """The final event: no text, the finish reason and the usage."""
        self.done = True
        return StreamEvent(_outputs([""], [self._reason], self._usage), final=True)
