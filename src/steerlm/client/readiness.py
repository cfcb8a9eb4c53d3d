"""The readiness wait: when to probe again, when to give up, and the error then (pure bookkeeping).

A client waits for its model before its first request (**first contact**) and again when a request
meets a server restart (**recovery**: a refused or reset connection, or "model not found" from a server
that had the model). One wait serves every concurrent caller of a client (`steerlm.client.shared`).
The clients probe each endpoint per round (`model_ready`, and the model index while it is not ready)
and sleep `next_delay()` between rounds:

* **first contact, server unreachable** (connection refused, ...): the normal retry budget —
  `max_retries` more rounds, 0.5 s doubling to 8 s — then `ServerUnavailableError` naming the URL
  and what to start (about 2.5 s with the defaults);
* **the server answers but the model is not ready** (loading): up to `ready_timeout`, probing every
  50 ms doubling to 1 s, with one WARNING line when the wait starts; then `ModelNotFoundError` listing
  the models the server has. A model the server does not have while every model it lists is ready is
  refused at once, with the list (and a did-you-mean);
* **recovery**: an unreachable server is waited for too — up to `ready_timeout` in all, the same
  probes, one WARNING line — since a server that was there is most likely restarting.

Any other probe failure (TLS, a refused credential, ...) ends the wait at once with that error.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steerlm.errors import ModelNotFoundError, ServerUnavailableError, SteerLMError, TritonError
from steerlm.retry import RetryPolicy, is_retryable

__all__ = ["Ready", "ReadyWait"]

logger = logging.getLogger("steerlm.client")

_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0
START_HINT = ("Start the server there (a Triton server with the model, or `steerlm serve` for the local "
              "one) or pass url= where it runs")


@dataclass(frozen=True)
class Ready:
    """The outcome of a wait: the model config, and whether the wait had to wait (a restart was met)."""

    config: Mapping[str, Any]
    waited: bool


class ReadyWait:
    """One wait (first contact or recovery) over the endpoints of `urls`."""

    def __init__(self, model: str, urls: tuple[str, ...], ready_timeout: float, policy: RetryPolicy, *,
                 recovering: bool) -> None:
        self.model = model
        self.urls = urls
        self.ready_timeout = ready_timeout
        self.policy = policy
        self.recovering = recovering
        self.started = time.monotonic()
        self.deadline: float | None = self.started + ready_timeout if recovering else None
        self.rounds = 0
        self._answered: str | None = None  # URL of an endpoint that answered "not ready" this round
        self._index: dict[str, str] | None = None
        self._last: TritonError | None = None
        self._delay = _FIRST_DELAY
        self._warned = False

    # ------------------------------------------------------------------ one round of probes
    def begin_round(self) -> None:
        self._answered = None

    def ready(self, config: Mapping[str, Any]) -> Ready:
        """The model answered ready on some endpoint."""
        return Ready(config, waited=self.rounds > 0)

    def loading(self, url: str, index: dict[str, str] | None) -> None:
        """A server answered that the model is not ready; `index` is its model list (name → state)."""
        self._answered = url
        if index is not None:
            self._index = index
        if (not self.recovering and index and self.model not in index
                and all(state.upper() == "READY" for state in index.values())):
            raise self._unknown(url, index)

    def unreachable(self, url: str, exc: SteerLMError) -> None:
        """A probe failed: remember a retryable failure (the server is down), re-raise anything else."""
        if isinstance(exc, ModelNotFoundError):
            self.loading(url, None)
            return
        if not (isinstance(exc, TritonError) and is_retryable(exc)):
            raise exc
        self._last = exc

    # ------------------------------------------------------------------ between rounds
    def next_delay(self) -> float:
        """Seconds to sleep before the next round; raises the failure when the wait is over."""
        self.rounds += 1
        now = time.monotonic()
        if self._answered is None and self.deadline is None:  # first contact, nothing answered yet
            return self.policy.pause(self.rounds, self._refused(now))
        if self.deadline is None:
            self.deadline = now + self.ready_timeout
        remaining = self.deadline - now
        if remaining <= 0:
            raise self._refused(now) if self._answered is None else self._not_ready()
        if not self._warned:
            self._warned = True
            what = "to become ready" if self._answered is not None else "to come back (restarting?)"
            logger.warning("waiting up to %g s for model %r on %s %s", self.ready_timeout, self.model,
                           self._answered or ", ".join(self.urls), what)
        delay = min(self._delay, remaining)
        self._delay = min(self._delay * 2, _MAX_DELAY)
        return delay

    # ------------------------------------------------------------------ failures
    def _refused(self, now: float) -> ServerUnavailableError:
        detail = str(self._last) if self._last is not None else ""
        detail = detail.split(f"(model {self.model!r}): ", 1)[-1]  # the transport's own words, not our prefix
        cause = f" ({detail})" if detail else ""
        where = ", ".join(self.urls)
        return ServerUnavailableError(
            f"cannot reach the server at {where} for model {self.model!r} after {self.rounds} attempt(s) in "
            f"{now - self.started:.1f} s{cause}. Is it running? {START_HINT}",
            status=getattr(self._last, "status", None), model=self.model,
        )

    def _listing(self, index: dict[str, str] | None) -> str:
        if index is None:
            return " (the server's model index is not readable)"
        names = sorted(index)
        close = difflib.get_close_matches(self.model, names, 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        states = ", ".join(f"{n} ({index[n] or '?'})" if index[n].upper() != "READY" else n for n in names)
        return f"; the server has: {states or '(no models)'}{hint}"

    def _unknown(self, url: str, index: dict[str, str]) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"model {self.model!r} is not on the server at {url}{self._listing(index)}. Check `model=` (the "
            "Triton model name)", status="NOT_FOUND", model=self.model,
        )

    def _not_ready(self) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"model {self.model!r} is not ready on {self._answered} after waiting {self.ready_timeout:g} s "
            f"(ready_timeout){self._listing(self._index)}",
            status="NOT_READY", model=self.model,
        )
