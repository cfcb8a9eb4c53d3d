"""The one retry policy (tenacity), shared by the sync and the async client loops.

* only `TritonError` subclasses whose class says `retryable` (ServerUnavailableError, its
  RequestTimeoutError, ServerOverloadedError) are retried; everything else is raised at once;
* `max_retries` extra attempts (default 2; 0 disables), exponential backoff from 0.5 s doubling to
  at most 8 s, plus up to 0.5 s of random jitter; a `ServerOverloadedError.retry_after` (≤ 120 s)
  lengthens the wait to at least that;
* every retry is logged at WARNING with its cause; when the attempts run out the last error itself
  is raised (not a tenacity RetryError);
* the clients make the first attempt directly and build the tenacity controller only after a
  retryable failure (`should_retry` / `pause` / `retrying(offset=1)`): same policy, no cost on success.

A stream is retried only until its first chunk: the client converts any later failure into a
`StreamInterruptedError`, which is not retryable.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from steerlm.errors import ConfigurationError, ServerOverloadedError, TritonError

__all__ = ["DEFAULT_MAX_RETRIES", "RetryPolicy", "aretrying", "is_retryable", "retrying"]

logger = logging.getLogger("steerlm.retry")

DEFAULT_MAX_RETRIES = 2


def is_retryable(exc: BaseException) -> bool:
    """True for the retryable TritonError classes (see errors.py)."""
    return isinstance(exc, TritonError) and type(exc).retryable


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings plus the tenacity hooks built from them (one object for sync and async)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")

    def delay(self, attempt: int, exc: BaseException | None) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based): backoff with jitter, or
        the server's Retry-After when that is longer."""
        exponent = min(max(attempt - 1, 0), 32)
        base = min(self.initial * 2**exponent + random.uniform(0, self.jitter), self.maximum)
        if isinstance(exc, ServerOverloadedError) and exc.retry_after is not None:
            return float(max(base, float(exc.retry_after)))
        return float(base)

    def log(self, attempt: int, exc: BaseException | None, sleep: float) -> None:
        logger.warning(
            "retrying after %s (attempt %d of %d, sleeping %.2f s): %s",
            type(exc).__name__, attempt + 1, self.max_retries + 1, sleep, exc,
        )

    def should_retry(self, exc: BaseException) -> bool:
        """Whether a failed *first* attempt is retried (see `pause`)."""
        return self.max_retries > 0 and is_retryable(exc)

    def pause(self, exc: BaseException) -> float:
        """After a failed first attempt that `should_retry`: log it and return the seconds to sleep.

        The clients make their first attempt without building a tenacity controller (the common,
        successful case costs nothing), then continue with `retrying(offset=1)`.
        """
        sleep = self.delay(1, exc)
        self.log(1, exc, sleep)
        return sleep

    def _kwargs(self, sleep: Callable[[float], Any] | None, offset: int) -> dict[str, Any]:
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            return self.delay(state.attempt_number + offset, exc)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            self.log(state.attempt_number + offset, exc, state.next_action.sleep if state.next_action else 0.0)

        kwargs: dict[str, Any] = {
            "stop": stop_after_attempt(self.max_retries + 1 - offset),
            "wait": wait,
            "retry": retry_if_exception(is_retryable),
            "before_sleep": before_sleep,
            "reraise": True,
        }
        if sleep is not None:
            kwargs["sleep"] = sleep
        return kwargs

    def retrying(self, *, sleep: Callable[[float], None] | None = None, offset: int = 0) -> Retrying:
        """A tenacity controller for a blocking loop (`for attempt in policy.retrying(): ...`);
        `offset` attempts were already made (and paused after) outside it."""
        return Retrying(**self._kwargs(sleep, offset))

    def aretrying(self, *, sleep: Callable[[float], Any] | None = None, offset: int = 0) -> AsyncRetrying:
        """A tenacity controller for an asyncio loop (`async for attempt in policy.aretrying(): ...`)."""
        return AsyncRetrying(**self._kwargs(sleep, offset))


def retrying(max_retries: int = DEFAULT_MAX_RETRIES, **kwargs: Any) -> Retrying:
    """Shortcut: `RetryPolicy(max_retries).retrying(...)`."""
    return RetryPolicy(max_retries).retrying(**kwargs)


def aretrying(max_retries: int = DEFAULT_MAX_RETRIES, **kwargs: Any) -> AsyncRetrying:
    """Shortcut: `RetryPolicy(max_retries).aretrying(...)`."""
    return RetryPolicy(max_retries).aretrying(**kwargs)
