"""The steerlm exception tree and the one place that maps transport errors onto it.

```
SteerLMError
├── ConfigurationError (ValueError)   bad url/params/attribute name or value
├── PromptError (ValueError)          conversation cannot be rendered
│   └── ContextWindowExceededError    prompt (+ max_tokens) longer than the model's window
└── TritonError                       .status, .model; __cause__ kept
    ├── ServerUnavailableError   retryable
    │   └── RequestTimeoutError  retryable
    ├── ServerOverloadedError    retryable (.retry_after)
    ├── ModelNotFoundError
    ├── InvalidRequestError
    └── StreamInterruptedError   (.partial_text)
```

`classify(exc)` turns any exception raised by tritonclient, grpc, aiohttp, geventhttpclient or the
socket layer into one of the `TritonError` classes. Connections call it; nothing else maps errors.
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import ClassVar

__all__ = [
    "ConfigurationError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "PromptError",
    "RequestTimeoutError",
    "ServerOverloadedError",
    "ServerUnavailableError",
    "SteerLMError",
    "StreamInterruptedError",
    "TritonError",
    "classify",
]

MAX_RETRY_AFTER_S = 120.0


class SteerLMError(Exception):
    """Base class of every error steerlm raises."""


class ConfigurationError(SteerLMError, ValueError):
    """A URL, parameter or steering attribute is invalid; the message says what to fix."""


class PromptError(SteerLMError, ValueError):
    """The conversation cannot be rendered (empty, no user turn, ends with the assistant, too long)."""


class ContextWindowExceededError(PromptError):
    """The prompt plus the requested output does not fit in the model's context window."""

    def __init__(self, message: str, *, prompt_tokens: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.limit = limit


class TritonError(SteerLMError):
    """A failure talking to the inference server. `status` is the HTTP code or gRPC status name."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: str | int | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.model = model


class ServerUnavailableError(TritonError):
    """Connection refused/reset, gRPC UNAVAILABLE, HTTP 502/503/504. Retried."""

    retryable = True


class RequestTimeoutError(ServerUnavailableError):
    """The client-side deadline passed (gRPC DEADLINE_EXCEEDED, HTTP read timeout). Retried."""


class ServerOverloadedError(TritonError):
    """HTTP 429 / gRPC RESOURCE_EXHAUSTED. Retried, honouring `retry_after` (capped at 120 s)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: str | int | None = None,
        model: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, model=model)
        self.retry_after = None if retry_after is None else min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)


class ModelNotFoundError(TritonError):
    """The model is unknown to the server, or did not become ready within the wait."""


class InvalidRequestError(TritonError):
    """The server rejected the request (400, INVALID_ARGUMENT, dtype/shape mismatch, in-band error)."""


class StreamInterruptedError(TritonError):
    """A stream failed after at least one chunk arrived; `partial_text` holds what was received."""

    def __init__(
        self,
        message: str,
        *,
        partial_text: str = "",
        status: str | int | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message, status=status, model=model)
        self.partial_text = partial_text


# --------------------------------------------------------------------------- classification

_GRPC_UNAVAILABLE = {"UNAVAILABLE", "CANCELLED", "ABORTED", "UNKNOWN", "INTERNAL"}
_HTTP_STATUS_RE = re.compile(r"^\[?(\d{3})\]?")
_NOT_FOUND_HINTS = ("unknown model", "not found", "is not ready", "failed to load", "no version")


def _status_of(exc: BaseException) -> str | None:
    status = getattr(exc, "status", None)
    value = status() if callable(status) else status
    if value is None:
        code = getattr(exc, "code", None)
        value = code() if callable(code) else code
    if value is None:
        return None
    text = str(value)
    return text.removeprefix("StatusCode.")


def _message_of(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message() if callable(message) else message
    return str(text if text else exc)


def _from_status(status: str, message: str, model: str | None, exc: BaseException) -> TritonError:
    lowered = message.lower()
    http = _HTTP_STATUS_RE.match(status)
    code = http.group(1) if http else status.upper()
    where = f" (model {model!r})" if model else ""
    if code in {"429", "RESOURCE_EXHAUSTED"}:
        return ServerOverloadedError(
            f"server overloaded{where}: {message}", status=code, model=model,
            retry_after=_retry_after(exc),
        )
    if code in {"DEADLINE_EXCEEDED", "408"}:
        return RequestTimeoutError(
            f"request timed out{where}: {message}. Raise `timeout=` if the model needs longer.",
            status=code, model=model,
        )
    if code in {"404", "NOT_FOUND"} or any(h in lowered for h in _NOT_FOUND_HINTS):
        return ModelNotFoundError(
            f"model not found or not ready{where}: {message}. Check the Triton model name (`model=`) "
            "against the server's repository index.",
            status=code, model=model,
        )
    if code in {"502", "503", "504", "500"} or code in _GRPC_UNAVAILABLE:
        return ServerUnavailableError(f"server unavailable{where}: {message}", status=code, model=model)
    if code in {"501", "UNIMPLEMENTED"}:
        return InvalidRequestError(
            f"the server cannot serve this request{where}: {message}", status=code, model=model
        )
    return InvalidRequestError(f"server rejected the request{where}: {message}", status=code, model=model)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException, *, model: str | None = None) -> SteerLMError:
    """Map any transport-level exception to a steerlm error (the `__cause__` is set by the caller).

    Already-classified steerlm errors are returned unchanged.
    """
    if isinstance(exc, SteerLMError):
        return exc
    where = f" (model {model!r})" if model else ""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | socket.timeout):
        return RequestTimeoutError(
            f"request timed out{where}: {exc or 'no answer in time'}. Raise `timeout=` if needed.",
            model=model,
        )
    if isinstance(exc, ConnectionError | socket.gaierror | BrokenPipeError):
        return ServerUnavailableError(f"cannot reach the server{where}: {exc}", model=model)
    status = _status_of(exc)
    message = _message_of(exc)
    lowered = message.lower()
    if status is None:
        if "timed out" in lowered or "timeout" in lowered or "deadline" in lowered:
            return RequestTimeoutError(f"request timed out{where}: {message}", model=model)
        if any(h in lowered for h in ("connection refused", "connect call failed", "reset by peer",
                                      "failed to connect", "cannot connect", "server disconnected",
                                      "broken pipe", "connection aborted", "socket closed")):
            return ServerUnavailableError(f"cannot reach the server{where}: {message}", model=model)
        if isinstance(exc, OSError):
            return ServerUnavailableError(f"cannot reach the server{where}: {message}", model=model)
        return InvalidRequestError(f"request failed{where}: {message}", model=model)
    return _from_status(status, message, model, exc)
