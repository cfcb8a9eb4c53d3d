"""Both adapters' async clients close when their event loop shuts down (the core's `ClientCache`).

``asyncio.run(model.ainvoke(...))`` in a loop makes one client per loop; each must be closed by the
time its loop is gone (no gRPC channel or aiohttp session left open), and an explicit close must not
be repeated at shutdown. A spy wraps the real `AsyncSteerLMClient.close` (the real close still runs)
to count the closes; the calls go to the real local server over gRPC and HTTP.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from langchain_steerlm import ChatSteerLM, aclose_clients
from llamaindex_steerlm import SteerLM
from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.transport.http_conn import HttpConnection
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"

# adapter -> (make a model for a URL, one async call, the adapter's explicit async close)
Adapter = tuple[Callable[[str], Any], Callable[[Any], Awaitable[Any]], Callable[[Any], Awaitable[None]]]
ADAPTERS: dict[str, Adapter] = {
    "langchain": (lambda url: ChatSteerLM(model=MODEL, url=url, max_tokens=1),
                  lambda model: model.ainvoke("hi"), lambda model: aclose_clients()),
    "llamaindex": (lambda url: SteerLM(model=MODEL, url=url, max_tokens=1),
                   lambda model: model.acomplete("hi"), lambda model: model.aclose()),
}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_async_clients_close_when_their_event_loop_shuts_down(server: LocalServer, monkeypatch: pytest.MonkeyPatch,
                                                              adapter: str, protocol: str) -> None:
    closed: list[AsyncSteerLMClient] = []
    real_close = AsyncSteerLMClient.close

    async def close(self: AsyncSteerLMClient) -> None:
        closed.append(self)
        await real_close(self)

    monkeypatch.setattr(AsyncSteerLMClient, "close", close)
    make, call, explicit_close = ADAPTERS[adapter]
    model = make(server.grpc_url if protocol == "grpc" else server.http_url)
    for _ in range(3):
        asyncio.run(call(model))
    assert len(closed) == 3 and len(set(map(id, closed))) == 3  # one client per loop, closed at its shutdown

    async def explicit() -> int:
        await call(model)
        await explicit_close(model)
        return len(closed)

    assert asyncio.run(explicit()) == 4 and len(closed) == 4  # closed once: not again at shutdown
    assert len(server.requests(MODEL)) == 4


def test_short_lived_threads_leave_no_http_clients_behind(server: LocalServer) -> None:
    """tritonclient's blocking HTTP client is per thread; one made by a thread that has ended is freed
    (80 threads, one request each: not 80 clients kept for ever)."""
    client = SteerLMClient(MODEL, server.http_url, max_retries=0)
    try:
        for batch in range(4):
            threads = [threading.Thread(target=client.generate, args=(f"[[say=t{batch}.{i}]]",)) for i in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        gc.collect()
        conn = client._conns[0]
        assert isinstance(conn, HttpConnection)
        assert conn.open_clients() <= 2, conn.open_clients()  # only what live threads hold
        assert len(server.requests(MODEL)) == 80
    finally:
        client.close()
