"""Endpoint selection: which of a client's URLs a request goes to, and in which order it fails over.

The one place that decides it. The URLs of a list are load-balanced replicas: `Balancer`
(`steerlm.client.balancer`) orders them — least outstanding requests, ties round-robin, replicas that
are down skipped and re-probed — and `lease` counts each request in flight and learns from its
outcome. Pure and thread-safe (the counters are under a lock), for every transport, sync and async.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from steerlm.client.balancer import Balancer
from steerlm.errors import ModelNotFoundError, TritonError
from steerlm.retry import is_retryable
from steerlm.transport.urls import Endpoint

__all__ = ["EndpointSelector"]


class EndpointSelector:
    """Orders the endpoints for one attempt and learns from the outcomes."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self.balancer = Balancer(len(endpoints), labels=[e.url for e in endpoints])

    def order(self) -> tuple[int, ...]:
        """Endpoint indexes for one attempt, in the order to try them (the balancer's)."""
        return self.balancer.order()

    def url(self, index: int) -> str:
        """The canonical URL of endpoint `index` (for messages)."""
        return self.endpoints[index].url

    def lease(self, index: int) -> AbstractContextManager[None]:
        """Hold while a request runs on `index`: it counts as in flight there, and its outcome updates
        the replica's health (a connection error takes it out of the rotation until a re-probe)."""
        return self.balancer.lease(index)

    def succeeded(self, index: int) -> None:
        """A readiness probe found the model ready on `index`: it is in the rotation."""
        self.balancer.ready(index)

    def failed(self, position: int, order: tuple[int, ...], exc: TritonError) -> None:
        """Request number `position` of `order` failed: return to try the next endpoint, or re-raise
        `exc` when none is left or the error would be the same anywhere (not retryable). The error's
        message names the endpoint's URL."""
        url = self.endpoints[order[position]].url
        if exc.args and isinstance(exc.args[0], str) and url not in exc.args[0]:
            exc.args = (f"{exc.args[0]} [{url}]", *exc.args[1:])
        if position + 1 == len(order) or not (is_retryable(exc) or isinstance(exc, ModelNotFoundError)):
            raise exc
