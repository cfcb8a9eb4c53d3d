"""The one retry policy, shared by the sync and the async client loops.

* only `TritonError` subclasses whose class says `retryable` (ServerUnavailableError, its
  RequestTimeoutError, ServerOverloadedError) are retried; everything else is raised at once;
* `max_retries` extra attempts (0 disables), exponential backoff from 0.5 s doubling to at most 8 s,
  plus up to 0.5 s of random jitter; a `ServerOverloadedError.retry_after` (≤ 120 s) lengthens the
  wait to at least that;
* every retry is logged at WARNING with its cause; when the attempts run out the last error itself
  is raised.

The client loops call `pause(attempt, exc)` after a failed attempt: it returns the seconds to sleep,
or re-raises `exc` when the policy says stop. A stream is retried only until its first chunk: the
client converts any later failure into a `StreamInterruptedError`, which is not retryable. A request
that meets a server restart waits in the client's readiness wait instead (`steerlm.client.readiness`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from steerlm.errors import ConfigurationError, ServerOverloadedError, TritonError

__all__ = ["RetryPolicy", "is_retryable"]

logger = logging.getLogger("steerlm.retry")


def is_retryable(exc: BaseException) -> bool:
    """True for the retryable TritonError classes (see errors.py)."""
    return isinstance(exc, TritonError) and type(exc).retryable


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (one object for sync and async)."""

    max_retries: int
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

    def should_retry(self, attempt: int, exc: BaseException) -> bool:
        """Whether failed attempt number `attempt` (1-based) is followed by another."""
        return attempt <= self.max_retries and is_retryable(exc)

    def pause(self, attempt: int, exc: BaseException) -> float:
        """After failed attempt number `attempt`: log and return the seconds to sleep before the next
        one, or re-raise `exc` when it is not retryable or the retries are spent."""
        if not self.should_retry(attempt, exc):
            raise exc
        sleep = self.delay(attempt, exc)
        logger.warning("retrying after %s (attempt %d of %d, sleeping %.2f s): %s",
                       type(exc).__name__, attempt + 1, self.max_retries + 1, sleep, exc)
        return sleep
