"""Fault tolerance against a separate local server that these tests stop, kill and restart:

* the client is started before the server: it waits (bounded) and then succeeds;
* the server is killed and restarted while 64 concurrent requests run: every request ends (none
  hangs), and every one of them — all hit only retryable failures — succeeds after the restart;
* the server dies mid-stream: StreamInterruptedError with the text received so far, no hang.

Each is run for gRPC and HTTP, sync and async (streaming: gRPC, the protocol that streams).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from steerlm.client import AsyncSteerLMClient, Completion, SteerLMClient
from steerlm.errors import StreamInterruptedError, TritonError
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


def test_client_waits_for_a_server_that_is_not_up_yet(fault_server: LocalServer) -> None:
    fault_server.stop()
    outcomes: dict[tuple[str, str], Any] = {}

    def call(mode: str, protocol: str) -> None:
        kwargs: dict[str, Any] = {"ready_timeout": 120.0, "profile": CHAT}
        url = url_of(fault_server, protocol)
        try:
            if mode == "sync":
                with SteerLMClient(CHAT, url, **kwargs) as client:
                    outcomes[mode, protocol] = client.generate("[[say=late but fine]]")
            else:
                async def main() -> Completion:
                    async with AsyncSteerLMClient(CHAT, url, **kwargs) as client:
                        return await client.generate("[[say=late but fine]]")
                outcomes[mode, protocol] = asyncio.run(main())
        except BaseException as exc:
            outcomes[mode, protocol] = exc

    threads = [threading.Thread(target=call, args=combo, daemon=True) for combo in COMBOS]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert not outcomes, "the clients must still be waiting"
    fault_server.start()
    for thread in threads:
        thread.join(timeout=150)
    assert {combo: getattr(o, "text", o) for combo, o in outcomes.items()} == {
        combo: "late but fine" for combo in COMBOS}


@pytest.mark.parametrize(("mode", "protocol"), COMBOS)
def test_kill_and_restart_under_64_concurrent_requests(running: LocalServer, mode: str, protocol: str) -> None:
    url = url_of(running, protocol)

    def make() -> Any:
        cls = SteerLMClient if mode == "sync" else AsyncSteerLMClient
        return cls(CHAT, url, profile=CHAT, timeout=20.0, max_retries=8, ready_timeout=60.0)

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
