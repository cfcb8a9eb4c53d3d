"""The steerlm exception tree and the one place that maps transport errors onto it.

```
SteerLMError
├── ConfigurationError (ValueError)   bad url/params/attribute name or value
├── PromptError (ValueError)          conversation cannot be rendered
│   └── ContextWindowExceededError    prompt (+ max_tokens) longer than the model's window
├── StructuredOutputError (ValueError) strict structured output that does not match its schema
└── TritonError                       .status, .model; __cause__ kept
    ├── ServerUnavailableError   retryable
    │   └── RequestTimeoutError  retryable
    ├── ServerOverloadedError    retryable (.retry_after)
    ├── ModelNotFoundError
    ├── InvalidRequestError
    │   └── AuthenticationError  401/403: missing or refused credentials
    └── StreamInterruptedError   (.partial_text)
```

`classify(exc)` turns an exception raised by tritonclient, grpc, aiohttp, geventhttpclient, http.client,
urllib, ssl or the socket layer (or a transport error of steerlm's own) into one of the classes above.
Anything else — a KeyError or AttributeError in steerlm or in the caller's code — is not a transport
failure and is re-raised unchanged, so bugs surface as themselves (httpx's `map_httpcore_exceptions`
does the same). Connections call it; nothing else maps errors.
A transport's own status exception may widen the retryable statuses with a `retryable_statuses` set
(the OpenAI-compatible transport: 409 and every 5xx but 501, as the OpenAI SDK does).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthenticationError",
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
    "StructuredOutputError",
    "TritonError",
    "classify",
    "is_transport_error",
]

MAX_RETRY_AFTER_S = 120.0


class SteerLMError(Exception):
    """Base class of every error steerlm raises."""


class ConfigurationError(SteerLMError, ValueError):
    """A URL, parameter or steering attribute is invalid; the message says what to fix."""


class PromptError(SteerLMError, ValueError):
    """The conversation cannot be rendered (empty, no user turn, ends with the assistant, too long)."""


class StructuredOutputError(SteerLMError, ValueError):
    """A reply asked for with ``strict=True`` does not match its JSON schema (a server without guided
    decoding, following the prompted protocol, got it wrong). `errors` lists each mismatch (JSON-pointer
    path: what is wrong); `value` is the parsed reply."""

    def __init__(self, message: str, *, errors: tuple[str, ...] = (), value: object = None) -> None:
        super().__init__(message)
        self.errors = errors
        self.value = value


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


class AuthenticationError(InvalidRequestError):
    """HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED: the server (or a proxy) refused the
    credentials. Not retried; pass the right `api_key=` / `headers=`."""


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


from steerlm._classify import classify, is_transport_error  # noqa: E402  (the classes above come first)
