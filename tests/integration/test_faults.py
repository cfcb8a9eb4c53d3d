"""Fault tolerance against a separate local server that these tests stop, kill and restart:

* nothing listens at the URL: with default settings the client fails fast (the retry budget, well
  under 10 s) with a typed error naming the URL, and six concurrent first calls fail together;
* the server is killed and restarted while 64 concurrent requests run, with DEFAULT settings: every
  request ends (none hangs), and every one of them succeeds after the restart (the client waits for
  a server it was using to come back, up to `ready_timeout`, and sends the request then);
* the server dies mid-stream: StreamInterruptedError with the text received so far, no hang.

Each is run for gRPC and HTTP, sync and async (streaming: gRPC, the protocol that streams).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from steerlm.client import AsyncSteerLMClient, Completion, SteerLMClient
from steerlm.errors import ServerUnavailableError, StreamInterruptedError, TritonError
from steerlm.params import GenerationParams
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
COMBOS = [("sync", "grpc"), ("sync", "http"), ("async", "grpc"), ("async", "http")]
CONCURRENCY = 64


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(preset="minimal", workdir=tmp_path_factory.mktemp("fault-server"),
                     startup_timeout=120.0, stop_timeout=20.0) as server:
        yield server


@pytest.fixture
def running(fault_server: LocalServer) -> LocalServer:
    if not fault_server.is_running():
        fault_server.start()
    return fault_server


def url_of(server: LocalServer, protocol: str) -> str:
    return server.grpc_url if protocol == "grpc" else server.http_url


def run_concurrently(mode: str, make: Callable[[], Any], prompts: list[str],
                     params: GenerationParams) -> list[Completion | BaseException]:
    """Send every prompt at once (threads for sync, tasks for async); outcomes in prompt order."""
    if mode == "sync":
        client = make()
        try:
            with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
                futures = [pool.submit(client.generate, p, params) for p in prompts]
                _done, pending = concurrent.futures.wait(futures, timeout=180)
                assert not pending, f"{len(pending)} requests hung"
                return [f.exception() or f.result() for f in futures]
        finally:
            client.close()

    async def main() -> list[Completion | BaseException]:
        client = make()
        try:
            calls = [client.generate(p, params) for p in prompts]
            return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 180))
        finally:
            await client.close()

    return asyncio.run(main())


def closed_url(protocol: str) -> str:
    """A URL where nothing listens (a port just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"{protocol}://127.0.0.1:{port}"


@pytest.mark.parametrize(("mode", "protocol"), COMBOS)
def test_an_unreachable_server_fails_fast_with_defaults_naming_the_url(mode: str, protocol: str) -> None:
    """With default settings: the retry budget (0.5 s doubling), then a typed error naming the URL and
    what to start, well within 10 s — and six concurrent first calls fail together, not one by one."""
    url = closed_url(protocol)
    started = time.monotonic()
    outcomes: list[tuple[float, BaseException | None]] = []
    if mode == "sync":
        client: Any = SteerLMClient(CHAT, url)

        def call() -> None:
            try:
                client.generate("hi")
                outcomes.append((time.monotonic() - started, None))
            except BaseException as exc:
                outcomes.append((time.monotonic() - started, exc))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        client.close()
    else:
        async def main() -> None:
            async with AsyncSteerLMClient(CHAT, url) as aclient:
                async def call() -> None:
                    try:
                        await aclient.generate("hi")
                        outcomes.append((time.monotonic() - started, None))
                    except BaseException as exc:
                        outcomes.append((time.monotonic() - started, exc))

                await asyncio.gather(*(call() for _ in range(6)))

        asyncio.run(main())
    times = [t for t, _ in outcomes]
    errors = [e for _, e in outcomes]
    assert len(outcomes) == 6 and all(isinstance(e, ServerUnavailableError) for e in errors), errors
    assert max(times) <= 10.0 and max(times) - min(times) < 1.0, times  # together, not serialised
    message = str(errors[0])
    assert url in message and "Start the server" in message


@pytest.mark.parametrize(("mode", "protocol"), COMBOS)
def test_kill_and_restart_under_64_concurrent_requests(running: LocalServer, mode: str, protocol: str) -> None:
    url = url_of(running, protocol)

    def make() -> Any:
        cls = SteerLMClient if mode == "sync" else AsyncSteerLMClient
        return cls(CHAT, url)  # DEFAULT settings: the restart wait covers the outage, not max_retries

    prompts = [f"[[say=reply {i}]] [[delay=0.1]]" for i in range(CONCURRENCY)]
    killer = threading.Timer(0.6, lambda: (running.kill(), running.start()))
    killer.start()
    started = time.monotonic()
    outcomes = run_concurrently(mode, make, prompts, GenerationParams(max_tokens=4))
    killer.join()
    elapsed = time.monotonic() - started
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, TritonError) for e in errors), f"untyped errors: {errors[:3]}"
    assert errors == [], f"{len(errors)} requests lost: {sorted({repr(e) for e in errors})[:3]}"
    assert [o.text for o in outcomes if isinstance(o, Completion)] == [f"reply {i}" for i in range(CONCURRENCY)]
    assert elapsed < 120


@pytest.mark.parametrize("protocol", ["grpc", "http"])  # http: generate_stream, a truncated SSE body
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_server_killed_mid_stream(running: LocalServer, mode: str, protocol: str) -> None:
    prompt = "[[say=one two three four five six]] [[stream_fail_after=3]]"
    kwargs: dict[str, Any] = {"profile": CHAT, "stream_timeout": 30.0}
    url = running.grpc_url if protocol == "grpc" else running.http_url
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError) as info:
        if mode == "sync":
            with SteerLMClient(STREAMING, url, **kwargs) as client:
                received.extend(chunk.text for chunk in client.stream(prompt))
        else:
            async def main() -> None:
                async with AsyncSteerLMClient(STREAMING, url, **kwargs) as client:
                    async for chunk in client.stream(prompt):
                        received.append(chunk.text)

            asyncio.run(main())
    assert time.monotonic() - started < 20
    assert info.value.partial_text == "one two three " == "".join(received)
    deadline = time.monotonic() + 15  # the server kills itself: let it finish dying before the next test
    while running.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_without_any_retry_a_request_that_meets_a_restart_is_sent_after_it(running: LocalServer,
                                                                           protocol: str) -> None:
    """max_retries=0: the restart wait is not a retry, so calls made while the server is down and while
    it starts are answered once it is back (none fails with 'the model was reloaded')."""
    url = url_of(running, protocol)

    async def main() -> list[Any]:
        async with AsyncSteerLMClient(CHAT, url, max_retries=0) as client:
            await client.generate("[[say=warm]]")
            running.kill()
            restart = asyncio.create_task(asyncio.to_thread(running.start))
            calls = [asyncio.create_task(client.generate(f"[[say=r{i}]]")) for i in range(8)]
            await asyncio.sleep(0.5)
            calls += [asyncio.create_task(client.generate(f"[[say=r{i}]]")) for i in range(8, 16)]
            await restart
            return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 120))

    outcomes = asyncio.run(main())
    assert [getattr(o, "text", o) for o in outcomes] == [f"r{i}" for i in range(16)]
