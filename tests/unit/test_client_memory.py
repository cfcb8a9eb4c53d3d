"""The core client's retry, failover, readiness, restart and stream-interruption behaviour, run against
the public in-memory transport (`steerlm.transport.MemoryTransport`): the whole client runs, only the
sockets are replaced, and sleeps are recorded instead of slept, so each test takes milliseconds.

Every test runs the blocking and the asyncio client. The wire-level behaviour (real PyTriton, gRPC and
HTTP) is tested in tests/integration/test_client.py and test_faults.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from steerlm.client import AsyncSteerLMClient, CallOptions, SteerLMClient
from steerlm.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ServerOverloadedError,
    ServerUnavailableError,
    StreamInterruptedError,
)
from steerlm.params import GenerationParams
from steerlm.transport import MemoryRequest, MemoryServerError, MemoryTransport

CHAT = "Llama2-70B-SteerLM-Chat"


class Driver:
    """One interface over the sync and async client; sleeps are recorded, not slept."""

    def __init__(self, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mode = mode
        self.sleeps: list[float] = []
        self.runner = asyncio.Runner() if mode == "async" else None

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        async def asleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            await asyncio.sleep(0)

        monkeypatch.setattr("steerlm.client.sync._sleep", sleep)
        monkeypatch.setattr("steerlm.client.aio._sleep", asleep)

    def client(self, transport: MemoryTransport, **kwargs: Any) -> Any:
        cls = AsyncSteerLMClient if self.runner else SteerLMClient
        return cls(kwargs.pop("model", CHAT), kwargs.pop("url", "grpc://memory:1"), transport=transport, **kwargs)

    def run(self, value: Any) -> Any:
        return self.runner.run(value) if self.runner is not None else value

    def generate(self, client: Any, prompt: str, **kwargs: Any) -> Any:
        return self.run(client.generate(prompt, **kwargs))

    def stream(self, client: Any, prompt: str, received: list[str] | None = None) -> list[str]:
        out = received if received is not None else []
        if self.runner is None:
            out.extend(chunk.text for chunk in client.stream(prompt))
            return out

        async def collect() -> list[str]:
            async for chunk in client.stream(prompt):
                out.append(chunk.text)
            return out

        return self.run(collect())


@pytest.fixture(params=["sync", "async"])
def drive(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    driver = Driver(request.param, monkeypatch)
    yield driver
    if driver.runner is not None:
        driver.runner.close()


def echo(request: MemoryRequest) -> str:
    return f"echo: {request.prompt}"


def test_answers_come_from_the_function_and_requests_are_recorded(drive: Driver) -> None:
    transport = MemoryTransport(echo)
    client = drive.client(transport, headers={"x-team": "a"}, api_key="k")
    done = drive.generate(client, "hello", params=GenerationParams(max_tokens=7, temperature=0.5))
    assert (done.text, done.finish_reason) == ("echo: hello", "length")
    [seen] = transport.requests
    assert seen.prompt == "hello" and seen.inputs["max_output_len"] == 7 and seen.url == "grpc://memory:1"
    assert seen.inputs["temperature"] == pytest.approx(0.5)
    assert seen.headers == {"x-team": "a", "authorization": "Bearer k"}


def test_profile_stop_strings_cut_the_answer(drive: Driver) -> None:
    client = drive.client(MemoryTransport(lambda r: "Paris\n<extra_id_1>User\nand more"))
    done = drive.generate(client, "q")
    assert (done.text, done.finish_reason) == ("Paris", "stop")


def test_per_call_options_change_the_request_not_the_client(drive: Driver) -> None:
    transport = MemoryTransport(echo)
    client = drive.client(transport, headers={"x-team": "a"}, timeout=9.0)
    drive.generate(client, "one", options=CallOptions.of(timeout=2.0, headers={"x-run": "r"}, api_key="s"))
    drive.generate(client, "two")
    first, second = transport.requests
    assert first.timeout == 2.0 and first.headers == {"x-team": "a", "x-run": "r", "authorization": "Bearer s"}
    assert second.timeout == 9.0 and second.headers == {"x-team": "a"}


def test_retryable_errors_are_retried_with_backoff(drive: Driver) -> None:
    transport = MemoryTransport(echo).overload(2, retry_after=3.0)
    done = drive.generate(drive.client(transport, max_retries=2), "p")
    assert done.text == "echo: p" and len(transport.requests) == 1
    assert len(drive.sleeps) == 2 and all(s >= 3.0 for s in drive.sleeps)  # Retry-After honoured


def test_retries_run_out_with_the_last_error(drive: Driver) -> None:
    transport = MemoryTransport(echo).overload(5)
    with pytest.raises(ServerOverloadedError):
        drive.generate(drive.client(transport, max_retries=1), "p")
    assert len(drive.sleeps) == 1 and transport.requests == []


def test_a_rejected_request_is_not_retried_and_its_error_names_the_url(drive: Driver) -> None:
    transport = MemoryTransport(echo).error(400, "bad input")
    with pytest.raises(InvalidRequestError, match=r"bad input.*\[grpc://memory:1\]"):
        drive.generate(drive.client(transport, max_retries=3), "p")
    assert drive.sleeps == []


def test_failover_to_the_next_url(drive: Driver) -> None:
    down, up = "grpc://memory:1", "grpc://memory:2"
    transport = MemoryTransport(echo).refuse(100, url=down)
    client = drive.client(transport, url=[down, up], max_retries=0)
    assert drive.generate(client, "p").text == "echo: p"
    assert [r.url for r in transport.requests] == [up]
    drive.generate(client, "again")
    assert transport.requests[-1].url == up  # the endpoint that worked is tried first


def test_unreachable_server_fails_fast_naming_the_url(drive: Driver) -> None:
    transport = MemoryTransport(echo).refuse(1000)
    with pytest.raises(ServerUnavailableError) as info:
        drive.generate(drive.client(transport, url="grpc://memory:7"), "p")
    message = str(info.value)
    assert "grpc://memory:7" in message and "Start the server" in message and "Connection refused" in message
    assert len(drive.sleeps) == 2 and 0.5 <= drive.sleeps[0] <= 1.0 and 1.0 <= drive.sleeps[1] <= 1.5


def test_unknown_model_lists_the_models_the_server_has(drive: Driver) -> None:
    transport = MemoryTransport(echo, models=["Llama2-70B-SteerLM-Chat-streaming", "nemo-v2.0"])
    with pytest.raises(ModelNotFoundError) as info:
        drive.generate(drive.client(transport, model="Llama2-70B-SteerLM-Chatt", profile=CHAT), "p")
    assert "Llama2-70B-SteerLM-Chat-streaming, nemo-v2.0" in str(info.value)
    assert "did you mean 'Llama2-70B-SteerLM-Chat-streaming'" in str(info.value)
    assert drive.sleeps == []  # every listed model is ready: no wait


def test_a_loading_model_is_waited_for_with_one_warning(drive: Driver, caplog: pytest.LogCaptureFixture) -> None:
    transport = MemoryTransport(echo).not_ready(4)
    with caplog.at_level(logging.WARNING, logger="steerlm"):
        done = drive.generate(drive.client(transport, max_retries=0), "p")
    assert done.text == "echo: p"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"waiting up to 30 s for model {CHAT!r} on grpc://memory:1 to become ready"]
    assert drive.sleeps[:4] == [0.05, 0.1, 0.2, 0.4]


def test_a_model_that_stays_loading_ends_the_wait_with_a_typed_error(drive: Driver) -> None:
    transport = MemoryTransport(echo).not_ready(10**6)
    client = drive.client(transport, ready_timeout=0.0)
    with pytest.raises(ModelNotFoundError, match=r"not ready on grpc://memory:1 after waiting 0 s \(ready_timeout\)"):
        drive.generate(client, "p")


def test_a_request_that_meets_a_restart_is_sent_after_it(drive: Driver, caplog: pytest.LogCaptureFixture) -> None:
    transport = MemoryTransport(echo)
    client = drive.client(transport, max_retries=0)  # no retries at all: the restart wait is not a retry
    drive.generate(client, "before")
    transport.restart(refused=5, loading=3)
    with caplog.at_level(logging.WARNING, logger="steerlm"):
        assert drive.generate(client, "during").text == "echo: during"
    assert [r.prompt for r in transport.requests] == ["before", "during"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "waiting up to 30 s" in warnings[0] and "come back" in warnings[0]


def test_a_model_reload_is_waited_for_and_the_request_sent(drive: Driver) -> None:
    transport = MemoryTransport(echo)
    client = drive.client(transport, max_retries=0)
    drive.generate(client, "before")
    transport.not_ready(3)  # the request gets "model not found", then the probes see it loading
    assert drive.generate(client, "after reload").text == "echo: after reload"


def test_a_restart_that_outlasts_ready_timeout_fails_naming_the_url(drive: Driver) -> None:
    transport = MemoryTransport(echo)
    client = drive.client(transport, ready_timeout=0.0)
    drive.generate(client, "before")
    transport.refuse(10**6)
    with pytest.raises(ServerUnavailableError, match="grpc://memory:1"):
        drive.generate(client, "during")


def test_stream_retried_before_its_first_chunk(drive: Driver) -> None:
    transport = MemoryTransport(lambda r: ["one ", "two ", "three"], streaming=True)
    client = drive.client(transport, max_retries=1)
    transport.error("UNAVAILABLE", "try again")
    assert "".join(drive.stream(client, "p")) == "one two three"
    assert len(drive.sleeps) == 1


def test_stream_interrupted_after_chunks_keeps_the_partial_text(drive: Driver) -> None:
    transport = MemoryTransport(lambda r: ["one ", "two ", "three ", "four"], streaming=True).fail_after(2)
    client = drive.client(transport, max_retries=3)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as info:
        drive.stream(client, "p", received)
    assert info.value.partial_text == "one two " == "".join(received)
    assert len(transport.requests) == 1  # never retried after the first chunk


def test_decoupled_generate_joins_the_stream(drive: Driver) -> None:
    transport = MemoryTransport(lambda r: ["Hel", "lo\n<extra_id_1>", "User"], streaming=True)
    done = drive.generate(drive.client(transport), "p")
    assert (done.text, done.finish_reason) == ("Hello", "stop")


def test_raw_requests_and_model_spec(drive: Driver) -> None:
    import numpy as np

    client = drive.client(MemoryTransport(echo))
    spec = drive.run(client.model_spec())
    assert "prompts" in spec.inputs and spec.outputs.keys() == {"outputs"}
    prompts = np.array([[b"a"], [b"b"]], dtype=object)
    outputs = drive.run(client.request({"prompts": prompts}))
    assert [bytes(v) for v in outputs["outputs"][:, 0]] == [b"echo: a", b"echo: b"]


def test_a_bug_in_the_handler_is_not_disguised_as_a_server_error(drive: Driver) -> None:
    def broken(request: MemoryRequest) -> str:
        raise MemoryServerError(500, "Failed to process the request(s) for model: KeyError('x')")

    with pytest.raises(InvalidRequestError, match="the model raised an error"):
        drive.generate(drive.client(MemoryTransport(broken), max_retries=2), "p")
    assert drive.sleeps == []


def test_six_concurrent_first_calls_share_one_wait_and_fail_together() -> None:
    """Real sleeps: the six callers must fail at the same moment, after one wait (not six in a row)."""
    transport = MemoryTransport(echo).refuse(10**6)

    async def main() -> tuple[list[float], list[BaseException]]:
        client = AsyncSteerLMClient(CHAT, transport=transport, max_retries=1)
        started = time.monotonic()
        ends: list[float] = []

        async def one() -> BaseException:
            try:
                await client.generate("p")
            except ServerUnavailableError as exc:
                ends.append(time.monotonic() - started)
                return exc
            raise AssertionError("expected a failure")

        return ends, list(await asyncio.gather(*(one() for _ in range(6))))

    ends, errors = asyncio.run(main())
    assert len(errors) == 6 and len({id(e) for e in errors}) == 1  # one wait, one outcome for all
    assert max(ends) - min(ends) < 0.2 and max(ends) < 2.0
    assert transport.contacts == 2  # one probe per round, shared: not one per caller

    sync_transport = MemoryTransport(echo).refuse(10**6)
    client = SteerLMClient(CHAT, transport=sync_transport, max_retries=1)
    outcomes: list[tuple[float, BaseException]] = []
    started = time.monotonic()

    def call() -> None:
        try:
            client.generate("p")
        except ServerUnavailableError as exc:
            outcomes.append((time.monotonic() - started, exc))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    times = [t for t, _ in outcomes]
    assert len(outcomes) == 6 and max(times) - min(times) < 0.2 and sync_transport.contacts == 2


def test_64_concurrent_requests_across_a_restart_are_all_answered() -> None:
    transport = MemoryTransport(echo)

    async def main() -> list[str]:
        client = AsyncSteerLMClient(CHAT, transport=transport)
        await client.generate("warm")
        transport.restart(refused=20, loading=10)
        done = await asyncio.gather(*(client.generate(f"p{i}") for i in range(64)))
        return [d.text for d in done]

    assert asyncio.run(main()) == [f"echo: p{i}" for i in range(64)]
