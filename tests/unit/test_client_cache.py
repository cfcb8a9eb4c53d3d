"""steerlm.client_cache.ClientCache: one client per settings (per event loop for async ones), closed at
loop shutdown; copies start empty. Creating a client never connects (the URL is a closed port), and
closing one that never connected does no I/O, so nothing here needs a server; the adapters' use of the
cache against the real server is in tests/integration/test_{langchain,llamaindex}_calls.py.
"""

from __future__ import annotations

import asyncio
import copy
import pickle

from steerlm.client import ClientSettings
from steerlm.client_cache import ClientCache

OPTIONS = ClientSettings("Llama2-70B-SteerLM-Chat", ["grpc://127.0.0.1:9"], headers={"x": "1"})
OTHER = ClientSettings("Llama2-70B-SteerLM-Chat", ["grpc://127.0.0.1:9"], headers={"x": "1"}, timeout=5.0)


def test_sync_clients_are_shared_per_settings() -> None:
    cache = ClientCache()
    client = cache.sync(OPTIONS)
    equal = ClientSettings("Llama2-70B-SteerLM-Chat", "grpc://127.0.0.1:9", headers={"X": "1"})
    assert equal == OPTIONS and cache.sync(equal) is client  # equal settings (normalised) share one client
    assert cache.sync(OTHER) is not client and len(cache) == 2
    cache.close()
    assert len(cache) == 0 and cache.sync(OPTIONS) is not client


def test_copies_start_empty() -> None:
    cache = ClientCache()
    cache.sync(OPTIONS)
    assert len(copy.deepcopy(cache)) == 0 and len(pickle.loads(pickle.dumps(cache))) == 0
    assert len(cache) == 1


def test_async_clients_are_per_loop_and_closed_when_the_loop_shuts_down() -> None:
    cache = ClientCache()

    async def two() -> tuple[object, object, int]:
        first, again, other = await cache.aio(OPTIONS), await cache.aio(OPTIONS), await cache.aio(OTHER)
        assert first is again and first is not other
        return first, other, len(cache)

    with asyncio.Runner() as runner:
        first, _, opened = runner.run(two())
        assert opened == 2 and len(cache) == 2
        loop = runner.get_loop()
    # Runner.close() shut the loop's async generators down: the keeper closed and forgot its clients.
    assert len(cache) == 0 and loop.is_closed()
    second, _, _ = asyncio.run(two())
    assert second is not first


def test_aio_open_finds_only_clients_the_running_loop_has_open() -> None:
    """The hot path's plain lookup: None until `aio` made the client, then that client (and the lookup
    counts as a use: the client becomes the most recently used one)."""
    cache = ClientCache(maxsize=2)

    async def main() -> None:
        assert cache.aio_open(OPTIONS) is None
        client = await cache.aio(OPTIONS)
        other = await cache.aio(OTHER)
        assert cache.aio_open(OTHER) is other and cache.aio_open(OPTIONS) is client  # OPTIONS: used last
        await cache.aio(ClientSettings("m", "grpc://127.0.0.1:9"))  # a third: the least recently used goes
        assert cache.aio_open(OPTIONS) is client and cache.aio_open(OTHER) is None

    asyncio.run(main())
    assert asyncio.run(_open_later(cache)) is None  # a new loop has none open


async def _open_later(cache: ClientCache) -> object:
    return cache.aio_open(OPTIONS)


def test_aclose_closes_the_running_loops_clients_only() -> None:
    cache = ClientCache()
    sync = cache.sync(OPTIONS)

    async def main() -> tuple[int, int, bool]:
        client = await cache.aio(OPTIONS)
        before = len(cache)
        await cache.aclose()
        return before, len(cache), (await cache.aio(OPTIONS)) is client

    assert asyncio.run(main()) == (2, 1, False)
    assert cache.sync(OPTIONS) is sync


def test_the_cache_is_bounded_and_closes_what_it_evicts() -> None:
    closed: list[object] = []

    class Spy:
        def __init__(self, settings: ClientSettings) -> None:
            self.settings = settings

        def close(self) -> None:
            closed.append(self)

    cache: ClientCache = ClientCache(Spy, Spy, maxsize=3)  # type: ignore[arg-type]
    made = [cache.sync(ClientSettings("m", f"grpc://127.0.0.1:{port}")) for port in range(1, 6)]
    assert len(cache) == 3 and closed == made[:2]  # the two least recently used, closed
    assert cache.sync(made[2].settings) is made[2]  # still cached; now the most recently used
    cache.sync(ClientSettings("m", "grpc://127.0.0.1:9"))
    assert closed == [*made[:2], made[3]] and len(cache) == 3
