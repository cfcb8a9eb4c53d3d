"""Bookkeeping for the bounded wait until a model is ready (shared by the sync and async clients).

The clients poll `model_ready` on each endpoint, sleeping `next_delay()` between rounds (50 ms
doubling to 1 s — no busy loop) until `ready_timeout` has passed. Unreachable servers and not-ready
models are waited for; any other error ends the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from steerlm.errors import ModelNotFoundError, SteerLMError, TritonError
from steerlm.retry import is_retryable

__all__ = ["ReadyWait"]

_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0


class ReadyWait:
    """One wait: deadline, backoff, and the error to raise when it runs out."""

    def __init__(self, model: str, timeout: float, urls: Sequence[str]) -> None:
        self.model = model
        self.timeout = timeout
        self.urls = list(urls)
        self.deadline = time.monotonic() + timeout
        self._delay = _FIRST_DELAY
        self._last: TritonError | None = None

    def not_ready(self) -> None:
        """A server answered that the model is not ready (unknown or still loading)."""
        self._last = None

    def note(self, exc: SteerLMError) -> None:
        """A probe failed: keep waiting for unreachable servers / missing models, else re-raise."""
        if isinstance(exc, TritonError) and (is_retryable(exc) or isinstance(exc, ModelNotFoundError)):
            self._last = None if isinstance(exc, ModelNotFoundError) else exc
            return
        raise exc

    def next_delay(self) -> float | None:
        """Seconds to sleep before the next round, or None when the wait is over."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return None
        delay = min(self._delay, remaining)
        self._delay = min(self._delay * 2, _MAX_DELAY)
        return delay

    def failure(self, index: list[str] | None) -> TritonError:
        """The error for a wait that ran out (index: the server's model names, if readable)."""
        if self._last is not None:
            return self._last
        listing = (f"; the server has: {', '.join(index) or '(no models)'}" if index is not None
                   else " (the server's model index is not readable)")
        return ModelNotFoundError(
            f"model {self.model!r} is not ready on {', '.join(self.urls)} after waiting "
            f"{self.timeout:g} s (ready_timeout){listing}",
            status="NOT_READY", model=self.model,
        )
