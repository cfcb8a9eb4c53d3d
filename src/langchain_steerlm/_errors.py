"""steerlm errors re-raised as langchain-core's typed `ModelError`s — and still steerlm's own types.

Each class derives from the steerlm error and the matching langchain-core class, the pattern of
langchain-anthropic (``class AnthropicRateLimitError(anthropic.RateLimitError, ModelRateLimitError)``),
so ``except steerlm.RequestTimeoutError``, ``except langchain_core.exceptions.ModelTimeoutError`` and
LangChain's retry helpers (which read ``is_retryable``) all work. `to_langchain_error` is the one mapping.
"""

from __future__ import annotations

from langchain_core import exceptions as lc

from steerlm import errors as core

__all__ = [
    "SteerLMAPIError",
    "SteerLMAuthenticationError",
    "SteerLMConnectionError",
    "SteerLMContextOverflowError",
    "SteerLMInvalidRequestError",
    "SteerLMModelNotFoundError",
    "SteerLMPermissionDeniedError",
    "SteerLMRateLimitError",
    "SteerLMServerError",
    "SteerLMStreamInterruptedError",
    "SteerLMStructuredOutputError",
    "SteerLMTimeoutError",
    "mapped_errors",
    "to_langchain_error",
]


class SteerLMContextOverflowError(core.ContextWindowExceededError, lc.ContextOverflowError):
    """Prompt + max_tokens exceed the model's context window (raised before sending)."""


class SteerLMTimeoutError(core.RequestTimeoutError, lc.ModelTimeoutError):
    """The request timed out (client deadline, gRPC DEADLINE_EXCEEDED). Retryable."""


class SteerLMConnectionError(core.ServerUnavailableError, lc.ModelConnectionError):
    """The server could not be reached (refused, reset, gRPC UNAVAILABLE). Retryable."""


class SteerLMServerError(core.ServerUnavailableError, lc.ModelAPIError):
    """The server answered with a 5xx / internal failure. Retryable."""


class SteerLMRateLimitError(core.ServerOverloadedError, lc.ModelRateLimitError):
    """HTTP 429 / RESOURCE_EXHAUSTED. Retryable (`retry_after` is honoured by the core)."""


class SteerLMModelNotFoundError(core.ModelNotFoundError, lc.ModelNotFoundError):
    """Unknown or not-ready Triton model name."""


class SteerLMAuthenticationError(core.AuthenticationError, lc.ModelAuthenticationError):
    """HTTP 401 / UNAUTHENTICATED: a missing or wrong `api_key` (OpenAI-compatible server, proxy)."""


class SteerLMPermissionDeniedError(core.AuthenticationError, lc.ModelPermissionDeniedError):
    """HTTP 403 / PERMISSION_DENIED: the credentials are not allowed to use this model or server."""


class SteerLMInvalidRequestError(core.InvalidRequestError, lc.ModelInvalidRequestError):
    """The server rejected the request (400, INVALID_ARGUMENT, in-band model error)."""


class SteerLMStreamInterruptedError(core.StreamInterruptedError, lc.ModelAPIError):
    """The stream broke after the first chunk; `partial_text` holds what arrived.

    The core never retries it (the chunks were already delivered); `is_retryable` stays True for
    LangChain's own helpers, which re-run the whole call from the start.
    """


class SteerLMStructuredOutputError(core.StructuredOutputError, lc.OutputParserException):
    """``strict=True`` structured output that does not match its schema (`steerlm.StructuredOutputError`,
    also an `OutputParserException`, so ``include_raw=True`` reports it as the ``parsing_error``)."""

    def __init__(self, message: str, *, errors: tuple[str, ...] = (), value: object = None) -> None:
        core.StructuredOutputError.__init__(self, message, errors=errors, value=value)
        self.observation: str | None = None
        self.llm_output: str | None = None
        self.send_to_llm = False


class SteerLMAPIError(core.TritonError, lc.ModelAPIError):
    """Any other Triton failure."""


_CONNECTION_STATUSES = {None, "UNAVAILABLE", "CANCELLED", "ABORTED"}
_AUTH = {"401", "UNAUTHENTICATED"}
_DENIED = {"403", "PERMISSION_DENIED"}


def _target(exc: core.SteerLMError) -> type[core.SteerLMError] | None:
    raw = getattr(exc, "status", None)
    status = None if raw is None else str(raw).upper()
    if isinstance(exc, core.ContextWindowExceededError):
        return SteerLMContextOverflowError
    if isinstance(exc, core.RequestTimeoutError):
        return SteerLMTimeoutError
    if isinstance(exc, core.ServerUnavailableError):
        return SteerLMConnectionError if status in _CONNECTION_STATUSES else SteerLMServerError
    if isinstance(exc, core.ServerOverloadedError):
        return SteerLMRateLimitError
    if isinstance(exc, core.ModelNotFoundError):
        return SteerLMModelNotFoundError
    if isinstance(exc, core.StreamInterruptedError):
        return SteerLMStreamInterruptedError
    if isinstance(exc, core.InvalidRequestError):
        if status in _DENIED:
            return SteerLMPermissionDeniedError
        if status in _AUTH or isinstance(exc, core.AuthenticationError):
            return SteerLMAuthenticationError
        return SteerLMInvalidRequestError
    if isinstance(exc, core.TritonError):
        return SteerLMAPIError
    return None  # ConfigurationError / PromptError stay plain ValueErrors


def to_langchain_error(exc: BaseException) -> BaseException:
    """The dual-typed twin of a steerlm error (same message and attributes); others unchanged."""
    if not isinstance(exc, core.SteerLMError) or isinstance(exc, lc.ModelError):
        return exc
    target = _target(exc)
    if target is None:
        return exc
    twin = target.__new__(target)
    twin.__dict__.update(exc.__dict__)
    twin.args = exc.args
    twin.__cause__ = exc.__cause__
    twin.__traceback__ = exc.__traceback__
    return twin


class _MappedErrors:
    """Re-raise steerlm errors raised inside the block as their langchain-core twins (a plain context
    manager, not a generator: it wraps every call)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, core.SteerLMError):
            twin = to_langchain_error(exc)
            if twin is not exc:
                raise twin from exc.__cause__


_MAPPED = _MappedErrors()


def mapped_errors() -> _MappedErrors:
    """The context manager that re-raises steerlm errors as their langchain-core twins (one shared
    instance: it holds no state)."""
    return _MAPPED
