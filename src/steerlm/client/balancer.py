"""Load balancing across the replicas of a URL list (pure logic, no I/O; shared by every transport).

A client given several URLs treats them as replicas of one model. For each request the `Balancer`
hands out an order of endpoint indexes; the client tries them in that order within one attempt
(a retryable error moves on to the next index at once, as failover always did):

* **least outstanding requests first**, ties broken round-robin (a cursor that moves past each pick);
* a replica that failed with a connection error or does not have the model loaded (`marks_down`) is
  **down**: it goes to the end of the order, behind every healthy one, until its backoff (0.5 s
  doubling to 10 s per consecutive failure) has passed; then exactly one request is sent to it first,
  as a **probe**. A probe that works makes it healthy again; one that fails doubles the backoff (and
  the request fails over);
* when every replica is down they are still all tried, soonest re-probe first — the balancer
  never fails a request without trying.

Health changes of a list's replicas are logged on the ``steerlm.balancer`` logger: WARNING when a
replica goes down, INFO for a failed probe and when it answers again. The counters are
guarded by a lock, so one `Balancer` serves threads (the blocking client) and an event loop (the
asyncio client: `order` and `lease` never await) alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from steerlm.errors import ModelNotFoundError, RequestTimeoutError, ServerUnavailableError, TritonError

__all__ = ["FIRST_BACKOFF", "MAX_BACKOFF", "Balancer", "ReplicaState", "health_after", "marks_down"]

logger = logging.getLogger("steerlm.balancer")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0
_ONLY = (0,)


def marks_down(exc: BaseException) -> bool:
    """Whether `exc` says the replica cannot serve now: a connection error (refused, reset, HTTP
    502/503/504, gRPC UNAVAILABLE) or the model is not loaded there (a restarting server). A timeout is
    not one (the request may just be long), nor is an overloaded server or any other answer."""
    if isinstance(exc, RequestTimeoutError):
        return False
    return isinstance(exc, ServerUnavailableError | ModelNotFoundError)


def health_after(exc: BaseException | None) -> bool | None:
    """What a request's outcome says about its replica: True (it answered: success or a server-side
    error), False (`marks_down`), None (nothing: a timeout, a cancellation, a client-side failure)."""
    if exc is None:
        return True
    if marks_down(exc):
        return False
    if isinstance(exc, TritonError) and not isinstance(exc, RequestTimeoutError):
        return True
    return None


@dataclass
class ReplicaState:
    """One replica's counters: requests in flight, health, and when it may be probed again."""

    outstanding: int = 0
    healthy: bool = True
    failures: int = 0  # consecutive connection failures
    probe_at: float = 0.0  # monotonic time of the next probe (while down)
    served: int = 0  # requests the replica answered (successes and server-side errors)
    epoch: int = 0  # bumped at each health change; outcomes of requests sent before it are stale


class Balancer:
    """Picks the endpoint order of each request among `size` replicas; thread-safe.

    `labels` name the replicas in log messages (default: their indexes).

    Example:
        ```python
        balancer = Balancer(len(urls))
        for index in balancer.order():  # the failover loop of one attempt (next index on a retryable error)
            with balancer.lease(index):  # counts it in flight; its outcome updates the replica's health
                return send(urls[index])
        ```
    """

    def __init__(self, size: int, *, labels: Sequence[str] | None = None, first_backoff: float = FIRST_BACKOFF,
                 max_backoff: float = MAX_BACKOFF, clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError(f"a balancer needs at least one replica, got {size}")
        if labels is not None and len(labels) != size:
            raise ValueError(f"{len(labels)} labels for {size} replicas")
        self.size = size
        self.labels = tuple(labels) if labels is not None else tuple(str(i) for i in range(size))
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._cursor = 0
        self._replicas = [ReplicaState() for _ in range(size)]

    def state(self, index: int) -> ReplicaState:
        """A copy of replica `index`'s counters."""
        with self._lock:
            return replace(self._replicas[index])

    def order(self) -> tuple[int, ...]:
        """Every endpoint index, in the order one request should try them (see the module docstring)."""
        if self.size == 1:
            return _ONLY
        with self._lock:
            now, replicas, n = self._clock(), self._replicas, self.size
            healthy = [i for i in range(n) if replicas[i].healthy]
            down = sorted((i for i in range(n) if not replicas[i].healthy), key=lambda i: replicas[i].probe_at)
            probe: list[int] = []
            if down and replicas[down[0]].probe_at <= now:
                probe = [down.pop(0)]
                replicas[probe[0]].probe_at = now + self._backoff(replicas[probe[0]].failures)
            cursor = self._cursor
            healthy.sort(key=lambda i: (replicas[i].outstanding, (i - cursor) % n))
            first = (probe or healthy or down)[0]
            self._cursor = (first + 1) % n
            return (*probe, *healthy, *down)

    def lease(self, index: int) -> _Lease:
        """Count one request in flight on `index` while the block runs; its outcome (`health_after`)
        updates the replica's health unless the health changed meanwhile (then it is stale)."""
        return _Lease(self, index)

    def ready(self, index: int) -> None:
        """A readiness probe found the model ready on `index`: it is healthy (again)."""
        with self._lock:
            epoch = self._replicas[index].epoch
        self._finish(index, epoch, True, None, request=False)

    def _finish(self, index: int, epoch: int, healthy: bool | None, exc: BaseException | None, *,
                request: bool = True) -> None:
        with self._lock:
            replica = self._replicas[index]
            if request:
                replica.outstanding -= 1
                replica.served += bool(healthy)
            if healthy is None or replica.epoch != epoch or (healthy and replica.healthy):
                return
            was_healthy, replica.epoch = replica.healthy, epoch + 1
            if healthy:
                replica.healthy, replica.failures = True, 0
            else:
                replica.healthy, replica.failures = False, replica.failures + 1
                wait = self._backoff(replica.failures)
                replica.probe_at = self._clock() + wait
        label = self.labels[index]
        if self.size == 1:
            return  # one URL: the retry log says it all
        if healthy:
            logger.info("replica %s answers again; back in the rotation", label)
        elif was_healthy:
            logger.warning("replica %s is down, skipped until a re-probe in %.1f s: %s: %s", label, wait,
                           type(exc).__name__, exc)
        else:
            logger.info("replica %s is still down; next probe in %.1f s", label, wait)

    def _backoff(self, failures: int) -> float:
        return float(min(self.first_backoff * 2 ** min(max(failures - 1, 0), 32), self.max_backoff))


class _Lease:
    """`Balancer.lease`: a plain context manager (no generator), as it wraps every request."""

    __slots__ = ("balancer", "epoch", "index")

    def __init__(self, balancer: Balancer, index: int) -> None:
        self.balancer, self.index = balancer, index

    def __enter__(self) -> None:
        with self.balancer._lock:
            replica = self.balancer._replicas[self.index]
            replica.outstanding += 1
            self.epoch = replica.epoch

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.balancer._finish(self.index, self.epoch, True, None)
        else:
            self.balancer._finish(self.index, self.epoch, health_after(exc), exc)
