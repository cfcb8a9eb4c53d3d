"""`classify`: the one mapping from transport exceptions to the steerlm exception tree (see `steerlm.errors`,
which re-exports it; import it from there). The server strings matched here are recorded in
docs/errors-and-retries.md."""

from __future__ import annotations

import asyncio
import re
import socket

from steerlm.errors import (
    AuthenticationError,
    ConfigurationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerOverloadedError,
    ServerUnavailableError,
    SteerLMError,
)

__all__ = ["classify", "is_transport_error"]
# The server strings matched here are recorded in docs/errors-and-retries.md (Triton 2.51 / PyTriton 0.7).

_RETRYABLE_GRPC = {"UNAVAILABLE", "CANCELLED", "ABORTED", "UNKNOWN", "INTERNAL"}
_RETRYABLE_HTTP = {"502", "503", "504"}
_HTTP_STATUS_RE = re.compile(r"^\[?(\d{3})\]?$")
# Triton: "Request for unknown model: 'm' is not found" / "... has no available versions" /
# "... version 1 is not at ready state"; HTTP 404, gRPC NOT_FOUND (sometimes UNAVAILABLE while loading).
_NOT_FOUND_HINTS = ("request for unknown model", "is not at ready state", "has no available versions")
# Triton wraps an exception raised by the model (PyTriton infer function) as HTTP 500 / gRPC INTERNAL
# "Failed to process the request(s) for model '<m>_0_0', message: TritonModelException: Model execute
# error: Traceback ..."; in a decoupled stream the response's error_message is the bare traceback.
_MODEL_ERROR_HINTS = ("failed to process the request", "model execute error", "traceback (most recent call")
# PyTriton token-protects some endpoints: HTTP 403 "This API is restricted, expecting header ..." and
# gRPC UNAVAILABLE "This protocol is restricted, expecting header ...". AuthenticationError, not retryable.
_RESTRICTED_HINT = "is restricted, expecting header"
_CONNECTION_HINTS = ("connection refused", "connect call failed", "reset by peer", "failed to connect",
                     "cannot connect", "server disconnected", "broken pipe", "connection aborted",
                     "socket closed", "connection closed", "response payload is not completed",
                     "connection reset", "eof occurred")
# aiohttp's connection and truncated-body errors; http.client's truncated chunked body (a server that died
# in the middle of an HTTP generate_stream answer: "IncompleteRead(0 bytes read)").
_CONNECTION_CLASSES = {"ClientConnectionError", "ClientPayloadError", "IncompleteRead"}
# TLS: grpc "Tls handshake failed ... CERTIFICATE_VERIFY_FAILED: self signed certificate", Python ssl /
# aiohttp "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ...". A configuration problem.
# grpc: "Hostname Verification Check failed" (older: "Peer name x is not in peer certificate"); a server that
# requires a client certificate answers the handshake with an alert. All configuration problems.
_TLS_HINTS = ("certificate_verify_failed", "certificate verify failed", "hostname verification check failed",
              "is not in peer certificate")
_CLIENT_CERT_HINTS = ("alert certificate required", "alert bad certificate", "alert unknown ca",
                      "alert certificate expired", "alert certificate unknown", "peer did not return a certificate")
# grpc refuses a header name or value it cannot send (CR/LF, non-ASCII, upper case) with INTERNAL
# "Invalid metadata" — before sending anything. steerlm validates headers at construction; this is the backstop.
_METADATA_HINT = "invalid metadata"
# Exception families `classify` maps: the top-level module of a class in the exception's MRO.
_TRANSPORT_MODULES = frozenset({"tritonclient", "grpc", "aiohttp", "geventhttpclient", "gevent", "http",
                                "urllib", "ssl", "socket", "steerlm"})
# OpenAI-compatible servers refuse an over-long prompt with HTTP 400: vLLM / OpenAI "This model's maximum
# context length is 4096 tokens. However, you requested ...", code "context_length_exceeded";
# trtllm-serve / TGI "... must be <= ... tokens" variants say "context length" or "max_seq_len".
_CONTEXT_HINTS = ("maximum context length", "context_length_exceeded", "context length", "context window",
                  "max_seq_len", "max_model_len")
_AUTH_CODES = {"401", "403", "UNAUTHENTICATED", "PERMISSION_DENIED"}
# A server's own "input too long", whatever the status or channel (gRPC/HTTP error, NeMo's in-band reply):
# TensorRT-LLM "Prompt length (N) exceeds maximum input length (M)" and "... exceeds max sequence length" /
# "max_seq_len"; vLLM and the Triton vLLM backend "This model's maximum context length is N tokens ...",
# "The decoder prompt (length N) is longer than the maximum model length of M", "prompt is too long";
# `steerlm serve`'s HF backend "... exceeds the model's N positions"; NeMo deployables relay these texts.
_OVERFLOW_HINTS = ("maximum context length", "context_length_exceeded", "exceeds maximum input length",
                   "exceeds the maximum input length", "exceeds max sequence length", "longer than the maximum model "
                   "length", "prompt is too long", "input is too long", "input too long", "positions",
                   "exceeds the max sequence length", "max_model_len", "max_seq_len")


def overflow_error(message: str, model: str | None) -> ContextWindowExceededError | None:
    """The context-overflow error for a server's "input too long" `message` (None for other messages)."""
    lowered = message.lower()
    if not any(h in lowered for h in _OVERFLOW_HINTS) or (
            "positions" in lowered and "exceeds the model" not in lowered):
        return None
    return ContextWindowExceededError(
        f"the prompt does not fit the model's context window{_where(model)}: "
        f"{_model_error_summary(message).rstrip('.')}. Shorten the conversation or lower `max_tokens`.")


def in_band_error(message: str, model: str | None) -> SteerLMError:
    """The error for NeMo's in-band ``An error occurred: <message>`` reply."""
    overflow = overflow_error(message, model)
    if overflow is not None:
        return overflow
    return InvalidRequestError(f"the server reported an error{_where(model)}: {message}", status="in-band",
                               model=model)


def _status_of(exc: BaseException) -> str | None:
    status = getattr(exc, "status", None)
    value = status() if callable(status) else status
    if value is None:
        code = getattr(exc, "code", None)
        value = code() if callable(code) else code
    if value is None:
        return None
    text = str(getattr(value, "name", value))
    return text.removeprefix("StatusCode.")


def _message_of(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if callable(message):
        message = message()
    if not message:
        details = getattr(exc, "details", None)
        message = details() if callable(details) else details
    return str(message if message else exc) or type(exc).__name__


def _model_error_summary(message: str) -> str:
    """The last line of a model traceback ("ValueError: boom"), or the message itself."""
    head = message.split("\n\n\nAt:", 1)[0]
    lines = [ln.strip() for ln in head.strip().splitlines() if ln.strip()]
    if "traceback" in message.lower() and lines:
        return lines[-1]
    return message


def _where(model: str | None) -> str:
    return f" (model {model!r})" if model else ""


def _from_message(message: str, model: str | None, status: str | None) -> SteerLMError | None:
    """Classes decided by the server's text whatever the status (model errors, restricted, not found)."""
    lowered = message.lower()
    where = _where(model)
    overflow = overflow_error(message, model)
    if overflow is not None:
        return overflow
    if any(h in lowered for h in _TLS_HINTS):
        return ConfigurationError(
            f"certificate verify failed{where}: {message}. The server's certificate must name the URL's host, "
            "be unexpired and be signed by a CA you trust: pass root_certificates= (a PEM file path or PEM "
            "text) with that CA (or verify_ssl=False, https:// only)"
        )
    if any(h in lowered for h in _CLIENT_CERT_HINTS):
        return ConfigurationError(
            f"the server refused the TLS client certificate{where}: {message}. Pass client_certificate= and "
            "client_key= (PEM file paths or PEM text) signed by a CA the server trusts, and not expired"
        )
    if _METADATA_HINT in lowered:
        return ConfigurationError(
            f"the gRPC layer refused a header{where} (Invalid metadata): header names must be lower-case "
            "tokens and values printable ASCII without line breaks"
        )
    if _RESTRICTED_HINT in lowered:
        return AuthenticationError(f"the server refused access{where}: {message}", status=status, model=model)
    if any(h in lowered for h in _MODEL_ERROR_HINTS):
        return InvalidRequestError(
            f"the model raised an error{where}: {_model_error_summary(message)}", status=status, model=model
        )
    if any(h in lowered for h in _NOT_FOUND_HINTS):
        return ModelNotFoundError(
            f"model not found or not ready{where}: {message}. Check the Triton model name (`model=`) "
            "against the server's repository index.",
            status=status, model=model,
        )
    return None


def _from_status(status: str, message: str, model: str | None, exc: BaseException) -> SteerLMError:
    http = _HTTP_STATUS_RE.match(status)
    code = http.group(1) if http else status.upper()
    where = _where(model)
    if code in {"429", "RESOURCE_EXHAUSTED"}:
        return ServerOverloadedError(
            f"server overloaded{where}: {message}", status=code, model=model, retry_after=_retry_after(exc),
        )
    if code in {"DEADLINE_EXCEEDED", "408"}:
        return RequestTimeoutError(
            f"request timed out{where}: {message}. Raise `timeout=` if the model needs longer.",
            status=code, model=model,
        )
    if code in _AUTH_CODES:
        return AuthenticationError(
            f"the server refused the credentials{where} ({code}): {message}. Check `api_key=` / `headers=`.",
            status=code, model=model,
        )
    if code in {"400", "INVALID_ARGUMENT"} and any(h in message.lower() for h in _CONTEXT_HINTS):
        return ContextWindowExceededError(
            f"the prompt does not fit the model's context window{where}: {message.rstrip('.')}. Shorten the "
            "conversation or lower `max_tokens`."
        )
    overflow = overflow_error(message, model)
    if overflow is not None:  # a model's own "input too long", whatever the status
        return overflow
    by_text = _from_message(message, model, code)
    if by_text is not None:
        return by_text
    if code in {"404", "NOT_FOUND"}:
        return ModelNotFoundError(f"model not found{where}: {message}", status=code, model=model)
    if code in _RETRYABLE_HTTP or code in _RETRYABLE_GRPC or code in getattr(exc, "retryable_statuses", ()):
        return ServerUnavailableError(f"server unavailable{where}: {message}", status=code, model=model)
    if code in {"501", "UNIMPLEMENTED"}:
        return InvalidRequestError(f"the server cannot serve this request{where}: {message}",
                                   status=code, model=model)
    return InvalidRequestError(f"server rejected the request{where}: {message}", status=code, model=model)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_transport_error(exc: BaseException) -> bool:
    """Whether `classify` maps `exc`: OS / socket / ssl errors, timeouts, and exceptions of tritonclient,
    grpc, aiohttp, geventhttpclient, http.client, urllib or steerlm's own transports."""
    if isinstance(exc, OSError | TimeoutError | SteerLMError):
        return True
    return any(cls.__module__.partition(".")[0] in _TRANSPORT_MODULES for cls in type(exc).__mro__)


def classify(exc: BaseException, *, model: str | None = None) -> SteerLMError:
    """Map a transport-level exception to a steerlm error (the caller sets `__cause__`).

    Handles tritonclient's InferenceServerException (gRPC status names, HTTP codes), grpc.RpcError,
    aiohttp / geventhttpclient / http.client / urllib / socket / ssl errors and timeouts. Already-classified
    steerlm errors are returned unchanged; anything else (`is_transport_error` is False) is re-raised as it is.
    """
    if isinstance(exc, SteerLMError):
        return exc
    if not is_transport_error(exc):
        raise exc
    where = _where(model)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | socket.timeout):
        return RequestTimeoutError(
            f"request timed out{where}: {str(exc) or 'no answer in time'}. Raise `timeout=` if needed.",
            model=model,
        )
    if isinstance(exc, ConnectionError | socket.gaierror | BrokenPipeError):
        return ServerUnavailableError(f"cannot reach the server{where}: {exc}", model=model)
    status = _status_of(exc)
    message = _message_of(exc)
    if status is not None:
        return _from_status(status, message, model, exc)
    by_text = _from_message(message, model, None)
    if by_text is not None:
        return by_text
    lowered = message.lower()
    mro = {c.__name__ for c in type(exc).__mro__}
    if any(h in lowered for h in _CONNECTION_HINTS) or mro & _CONNECTION_CLASSES or isinstance(exc, OSError):
        return ServerUnavailableError(f"cannot reach the server{where}: {message}", model=model)
    if "timed out" in lowered or "deadline exceeded" in lowered:
        return RequestTimeoutError(f"request timed out{where}: {message}", model=model)
    return InvalidRequestError(f"request failed{where}: {message}", model=model)
