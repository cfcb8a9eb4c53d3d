"""The real client against the local server, parametrized over protocol (gRPC / HTTP) and mode
(sync / async): exact wire content per signature (request log), batching order, streaming with stop
strings across chunks (decoupled models over gRPC streams and over HTTP's generate_stream SSE),
one-chunk fallback, in-band and raised errors (also after the first chunk), timeouts, readiness,
failover, and the TensorRT-LLM ensemble's `stream=false` for whole answers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steerlm.client import AsyncSteerLMClient, Completion, SteerLMClient, StreamChunk
from steerlm.errors import (
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerUnavailableError,
    StreamInterruptedError,
)
from steerlm.params import GenerationParams
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(120)]

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
V2 = "nemo-v2.0"
LEGACY = "nemo-2310"
SAY = "[[say=Hello there\\n<extra_id_1>User\\nmore]]"


class Driver:
    """Calls the sync or the async client through one interface (so tests are written once)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.runner = asyncio.Runner() if mode == "async" else None
        self.clients: list[Any] = []

    def client(self, model: str, url: str | list[str], **kwargs: Any) -> Any:
        cls = AsyncSteerLMClient if self.runner else SteerLMClient
        kwargs.setdefault("profile", CHAT)
        client = cls(model, url, **kwargs)
        self.clients.append(client)
        return client

    def run(self, value: Any) -> Any:
        return self.runner.run(value) if self.runner else value

    def generate(self, client: Any, prompt: str, params: GenerationParams | None = None) -> Completion:
        return self.run(client.generate(prompt, params))  # type: ignore[no-any-return]

    def batch(self, client: Any, prompts: list[str], params: GenerationParams | None = None) -> list[Completion]:
        return self.run(client.batch(prompts, params))  # type: ignore[no-any-return]

    def stream(self, client: Any, prompt: str, params: GenerationParams | None = None) -> list[StreamChunk]:
        if self.runner is None:
            return list(client.stream(prompt, params))

        async def collect() -> list[StreamChunk]:
            return [chunk async for chunk in client.stream(prompt, params)]

        return self.runner.run(collect())

    def close(self) -> None:
        for client in self.clients:
            self.run(client.close())
        if self.runner:
            self.runner.close()


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    d = Driver(request.param)
    yield d
    d.close()


@pytest.fixture(params=["grpc", "http"])
def url(request: pytest.FixtureRequest, server: LocalServer) -> str:
    return server.grpc_url if request.param == "grpc" else server.http_url


@pytest.fixture(params=["grpc", "http"])
def stream_url(request: pytest.FixtureRequest, server: LocalServer) -> str:
    """Both protocols for decoupled models: gRPC streams, HTTP generate_stream (SSE)."""
    return server.grpc_url if request.param == "grpc" else server.http_url


def dead_url(scheme: str = "grpc") -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"{scheme}://127.0.0.1:{sock.getsockname()[1]}"


FULL = GenerationParams(max_tokens=8, temperature=0.5, top_k=2, top_p=0.9, seed=7, stop=("a,b",))
EXPECTED_WIRE = {
    CHAT: {"max_output_len": ("INT64", 8), "top_k": ("INT64", 2), "top_p": ("FP32", 0.9),
           "temperature": ("FP32", 0.5), "random_seed": ("INT64", 7),
           "stop_words_list": ("BYTES", '<extra_id_1>,"a,b"'), "output_generation_logits": ("BOOL", False),
           "output_context_logits": ("BOOL", False)},
    V2: {"max_output_len": ("INT64", 8), "top_k": ("INT64", 2), "top_p": ("FP32", 0.9),
         "temperature": ("FP32", 0.5), "random_seed": ("INT64", 7),
         "stop_words_list": ("BYTES", '<extra_id_1>,"a,b"')},
    LEGACY: {"max_output_token": ("INT64", 8), "top_k": ("INT64", 2), "top_p": ("FP32", 0.9),
             "temperature": ("FP32", 0.5), "stop_words_list": ("BYTES", '<extra_id_1>,"a,b"')},
}


@pytest.mark.parametrize("model", [CHAT, V2, LEGACY])
def test_exact_wire_content_per_signature(driver: Driver, url: str, server: LocalServer, model: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    client = driver.client(model, url)
    with caplog.at_level(logging.WARNING, logger="steerlm.client"):
        done = driver.generate(client, "hi " + SAY, FULL)
        driver.generate(client, "again " + SAY, FULL)
    assert done == Completion("Hello there", "stop", model, "hi " + SAY)
    inputs = server.last_request(model)["inputs"]
    assert inputs["prompts"] == {"datatype": "BYTES", "shape": [1, 1], "data": ["again " + SAY]}
    sent = {name: (t["datatype"], round(v, 5) if isinstance(v := t["data"][0], float) else v)
            for name, t in inputs.items() if name != "prompts"}
    assert sent == EXPECTED_WIRE[model]
    assert all(t["shape"] == [1, 1] for t in inputs.values())
    warnings = [r.getMessage() for r in caplog.records if "seed" in r.getMessage()]
    assert len(warnings) == (1 if model == LEGACY else 0)  # dropped seed: logged once, not per call


def test_unset_params_are_not_sent(driver: Driver, url: str, server: LocalServer) -> None:
    driver.generate(driver.client(V2, url, profile=None), "plain")
    assert set(server.last_request(V2)["inputs"]) == {"prompts"}


def test_batch_keeps_order_and_splits_by_max_batch_size(driver: Driver, url: str, server: LocalServer) -> None:
    prompts = [f"[[say=answer {i}]]" for i in range(20)]
    results = driver.batch(driver.client(CHAT, url), prompts, GenerationParams(max_tokens=4))
    assert [r.text for r in results] == [f"answer {i}" for i in range(20)]
    assert [r.prompt for r in results] == prompts
    rows = [r["inputs"]["prompts"]["shape"][0] for r in server.requests(CHAT)]
    assert sorted(rows, reverse=True) == [8, 8, 4]
    assert all(r["inputs"]["max_output_len"]["shape"] == [n, 1] for r, n in zip(server.requests(CHAT), rows,
                                                                                  strict=True))


def test_stream_cuts_stop_strings_across_chunks(driver: Driver, stream_url: str) -> None:
    client = driver.client(STREAMING, stream_url)
    chunks = driver.stream(client, "[[say=Hello there\\n<extra_id_1>User\\nleak]]")
    assert "".join(c.text for c in chunks) == "Hello there"
    assert len([c for c in chunks if c.text]) >= 2  # really streamed
    assert chunks[-1].finish_reason == "stop" and all(c.finish_reason is None for c in chunks[:-1])
    custom = driver.stream(client, "[[say=one two three four]]", GenerationParams(stop=("e fo",)))
    assert "".join(c.text for c in custom) == "one two thre" and custom[-1].finish_reason == "stop"


def test_concurrent_streams_each_get_their_own_stream(driver: Driver, stream_url: str) -> None:
    client = driver.client(STREAMING, stream_url)
    prompts = [f"[[say=s{i} a b c]] [[delay=0.01]]" for i in range(12)]
    if driver.runner is None:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(lambda p: driver.stream(client, p), prompts))
    else:
        async def collect(prompt: str) -> list[StreamChunk]:
            return [chunk async for chunk in client.stream(prompt)]

        async def all_of() -> list[list[StreamChunk]]:
            return list(await asyncio.gather(*(collect(p) for p in prompts)))

        outcomes = driver.runner.run(all_of())
    assert ["".join(c.text for c in chunks) for chunks in outcomes] == [f"s{i} a b c" for i in range(12)]


def test_stream_length_finish_and_deltas(driver: Driver, stream_url: str) -> None:
    chunks = driver.stream(driver.client(STREAMING, stream_url), "[[say=a b c d e f]]",
                           GenerationParams(max_tokens=3))
    assert [c.text for c in chunks if c.text] == ["a ", "b ", "c "]
    assert chunks[-1].finish_reason == "length"


def test_stream_of_a_unary_model_is_one_chunk(driver: Driver, url: str, caplog: pytest.LogCaptureFixture) -> None:
    client = driver.client(CHAT, url)
    with caplog.at_level(logging.INFO, logger="steerlm.client"):
        first = driver.stream(client, "hi " + SAY)
        driver.stream(client, "hi " + SAY)
    assert first == [StreamChunk("Hello there", "stop")]
    assert len([r for r in caplog.records if "one chunk" in r.getMessage()]) == 1


def test_generate_and_batch_on_a_decoupled_model_join_the_stream(driver: Driver, stream_url: str,
                                                                  server: LocalServer) -> None:
    client = driver.client(STREAMING, stream_url)
    assert driver.generate(client, SAY).text == "Hello there"
    server.clear_log()
    results = driver.batch(client, [f"[[say=n{i} x]]" for i in range(10)], GenerationParams(max_tokens=5))
    assert [r.text for r in results] == [f"n{i} x" for i in range(10)]
    rows = sorted(r["inputs"]["prompts"]["shape"][0] for r in server.requests(STREAMING))
    assert rows == ([1] * 10 if stream_url == server.http_url else [2, 8])  # generate_stream: one prompt each


def test_decoupled_wire_content_is_the_same_over_both_protocols(driver: Driver, stream_url: str,
                                                                 server: LocalServer) -> None:
    client = driver.client(STREAMING, stream_url)
    prompt = "grüße " + SAY
    assert driver.generate(client, prompt, FULL) == Completion("Hello there", "stop", STREAMING, prompt)
    assert "".join(c.text for c in driver.stream(client, prompt, FULL)) == "Hello there"
    for logged in server.requests(STREAMING):
        inputs = logged["inputs"]
        assert inputs["prompts"] == {"datatype": "BYTES", "shape": [1, 1], "data": [prompt]}
        sent = {name: (t["datatype"], round(v, 5) if isinstance(v := t["data"][0], float) else v)
                for name, t in inputs.items() if name != "prompts"}
        assert sent == EXPECTED_WIRE[CHAT]
        assert all(t["shape"] == [1, 1] for t in inputs.values())
    assert len(server.requests(STREAMING)) == 2


def test_model_exception_in_a_decoupled_model(driver: Driver, stream_url: str, server: LocalServer) -> None:
    client = driver.client(STREAMING, stream_url)
    with pytest.raises(InvalidRequestError, match="kaboom"):
        driver.stream(client, "[[raise=kaboom]]")
    with pytest.raises(InvalidRequestError, match="kaboom"):
        driver.generate(client, "[[raise=kaboom]]")
    assert len(server.requests(STREAMING)) == 2  # not retried


def test_error_after_the_first_chunk_interrupts_the_stream(driver: Driver, stream_url: str) -> None:
    client = driver.client(STREAMING, stream_url)
    failing = "[[say=a b c d e]] [[stream_raise_after=2]]"
    with pytest.raises(StreamInterruptedError, match="failed on purpose after 2 tokens") as info:
        driver.stream(client, failing)
    assert info.value.partial_text == "a b "  # exactly what was yielded before the error event
    with pytest.raises(InvalidRequestError, match="failed on purpose"):  # generate: nothing handed out yet
        driver.generate(client, failing)


def test_in_band_error_is_an_invalid_request(driver: Driver, url: str, server: LocalServer) -> None:
    with pytest.raises(InvalidRequestError, match="disk on fire") as info:
        driver.generate(driver.client(CHAT, url), "[[error=disk on fire]]")
    assert info.value.status == "in-band"
    assert len(server.requests(CHAT)) == 1  # not retried


def test_in_band_error_in_a_stream(driver: Driver, stream_url: str) -> None:
    client = driver.client(STREAMING, stream_url)
    with pytest.raises(InvalidRequestError, match="disk on fire") as info:
        driver.stream(client, "[[error=disk on fire]]")
    assert info.value.status == "in-band"
    with pytest.raises(InvalidRequestError, match="disk on fire"):
        driver.generate(client, "[[error=disk on fire]]")


def test_model_exception_is_an_invalid_request_and_not_retried(driver: Driver, url: str,
                                                               server: LocalServer) -> None:
    with pytest.raises(InvalidRequestError, match="kaboom"):
        driver.generate(driver.client(CHAT, url), "[[raise=kaboom]]")
    assert len(server.requests(CHAT)) == 1


def drain(driver: Driver, model: str, url: str) -> None:
    """Wait until the model has finished what a timed-out request left running (the local server
    runs one request per model at a time)."""
    assert driver.generate(driver.client(model, url, timeout=30), SAY).text == "Hello there"


def test_request_timeout(driver: Driver, url: str) -> None:
    client = driver.client(CHAT, url, timeout=0.5, max_retries=0)
    driver.generate(client, "warm up")
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        driver.generate(client, "[[sleep=1.5]]")
    assert time.monotonic() - started < 1.4
    drain(driver, CHAT, url)


def test_stream_inactivity_timeout(driver: Driver, stream_url: str) -> None:
    client = driver.client(STREAMING, stream_url, stream_timeout=0.3, max_retries=0)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="stream_timeout"):
        driver.stream(client, "[[say=a]] [[delay=1]]")
    assert time.monotonic() - started < 0.9
    drain(driver, STREAMING, stream_url)


def test_slow_consumer_is_not_a_silent_stream(driver: Driver, stream_url: str) -> None:
    """Time the caller spends between chunks is not server silence (sync gRPC used to cancel it)."""
    client = driver.client(STREAMING, stream_url, stream_timeout=0.3, max_retries=0)
    if driver.runner is None:
        chunks = []
        for chunk in client.stream("[[say=abc]]"):
            chunks.append(chunk)
            time.sleep(0.6)
    else:
        async def collect() -> list[StreamChunk]:
            out = []
            async for chunk in client.stream("[[say=abc]]"):
                out.append(chunk)
                await asyncio.sleep(0.6)
            return out

        chunks = driver.runner.run(collect())
    assert "".join(c.text for c in chunks) == "abc"


def test_unknown_model_after_a_bounded_wait(driver: Driver, url: str) -> None:
    client = driver.client("no-such-model", url, ready_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"no-such-model.*not readable"):
        driver.generate(client, "hi")
    assert time.monotonic() - started < 3


def test_failover_to_the_next_url(driver: Driver, url: str, server: LocalServer) -> None:
    scheme = url.split("://")[0]
    client = driver.client(CHAT, [dead_url(scheme), url], ready_timeout=5)
    assert driver.generate(client, SAY).text == "Hello there"
    assert driver.generate(client, SAY).text == "Hello there"
    assert len(server.requests(CHAT)) == 2


def test_unreachable_server_is_unavailable(driver: Driver) -> None:
    client = driver.client(CHAT, dead_url(), ready_timeout=0.2, max_retries=0)
    with pytest.raises(ServerUnavailableError):
        driver.generate(client, "hi")


def test_headers_and_construction_without_network(driver: Driver, url: str) -> None:
    client = driver.client(CHAT, url, headers={"X-Request-Source": "steerlm-tests"})
    assert driver.generate(client, SAY).text == "Hello there"
    driver.client(CHAT, dead_url())  # nothing is contacted until the first call


# ----------------------------------------------------------------------------------------------- TLS
class TlsProxy:
    """TLS termination in front of the local server (self-signed cert for 127.0.0.1; h2 via ALPN for
    gRPC), run on its own event loop thread."""

    def __init__(self, cert: Path, key: Path, targets: dict[str, int]) -> None:
        self.cert, self.key, self.targets = cert, key, targets
        self.ports: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(10)

    def _context(self, alpn: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        context.set_alpn_protocols([alpn])
        return context

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _serve(self) -> None:
        for name, port in self.targets.items():
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = port) -> None:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

            server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                                ssl=self._context("h2" if name == "grpc" else "http/1.1"))
            self.ports[name] = server.sockets[0].getsockname()[1]
        self.ready.set()

    def _run(self) -> None:
        self.loop.run_until_complete(self._serve())
        self.loop.run_forever()


@pytest.fixture(scope="module")
def tls(local_server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> TlsProxy:
    assert shutil.which("openssl"), "the TLS tests need the openssl command to make a test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    ports = {"grpc": int(local_server.grpc_address.rsplit(":", 1)[1]),
             "http": int(local_server.http_address.rsplit(":", 1)[1])}
    return TlsProxy(cert, key, ports)


def test_decoupled_model_over_https_generate_stream(driver: Driver, server: LocalServer, tls: TlsProxy) -> None:
    url = f"https://127.0.0.1:{tls.ports['http']}"
    trusted = driver.client(STREAMING, url, root_certificates=str(tls.cert))
    assert "".join(c.text for c in driver.stream(trusted, SAY)) == "Hello there"
    assert driver.generate(driver.client(STREAMING, url, verify_ssl=False), SAY).text == "Hello there"
    with pytest.raises(ConfigurationError, match=r"(?i)certificate verify failed"):
        driver.stream(driver.client(STREAMING, url, ready_timeout=5, max_retries=0), SAY)


@pytest.mark.parametrize(("scheme", "port"), [("grpcs", "grpc"), ("https", "http")])
def test_tls_with_root_certificates(driver: Driver, server: LocalServer, tls: TlsProxy, scheme: str,
                                    port: str) -> None:
    url = f"{scheme}://127.0.0.1:{tls.ports[port]}"
    for roots in (str(tls.cert), tls.cert.read_bytes()):  # a PEM file path or the PEM itself
        client = driver.client(CHAT, url, root_certificates=roots, headers={"x-test": "1"})
        assert driver.generate(client, SAY).text == "Hello there"
    untrusted = driver.client(CHAT, url, ready_timeout=5)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=r"(?i)certificate verify failed.*root_certificates"):
        driver.generate(untrusted, SAY)
    assert time.monotonic() - started < 2  # not waited for, not retried


def test_https_without_verification_and_grpcs_refusing_it(driver: Driver, server: LocalServer,
                                                          tls: TlsProxy) -> None:
    client = driver.client(CHAT, f"https://127.0.0.1:{tls.ports['http']}", verify_ssl=False)
    assert driver.generate(client, SAY).text == "Hello there"
    with pytest.raises(ConfigurationError, match="verify_ssl=False"):
        driver.client(CHAT, f"grpcs://127.0.0.1:{tls.ports['grpc']}", verify_ssl=False)
    with pytest.raises(ConfigurationError, match="root_certificates"):
        driver.client(CHAT, "grpcs://127.0.0.1:1", root_certificates="/no/such/ca.pem")


# ------------------------------------------------------------------------ TensorRT-LLM ensemble signature
# `ensemble_server` (tests/integration/conftest.py): the "ensemble" preset, one server for the session.


@pytest.mark.parametrize(("model", "ints"), [("ensemble", "INT32"), ("ensemble-uint32", "UINT32")])
def test_ensemble_wire_content_and_echo_strip(driver: Driver, ensemble_server: LocalServer, model: str,
                                              ints: str) -> None:
    url = ensemble_server.grpc_url if driver.mode == "sync" else ensemble_server.http_url
    client = driver.client(model, url)
    done = driver.generate(client, "Q " + SAY, FULL)
    assert done.text == "Hello there" and done.finish_reason == "stop"  # echo stripped, stop cut
    inputs = ensemble_server.last_request(model)["inputs"]
    sent = {name: (t["datatype"], t["shape"], t["data"]) for name, t in inputs.items()}
    assert sent.pop("text_input") == ("BYTES", [1, 1], ["Q " + SAY])
    assert sent.pop("stop_words") == ("BYTES", [1, 2], ["<extra_id_1>", "a,b"])  # one word per string
    assert sent.pop("temperature")[:2] == ("FP32", [1, 1]) and sent.pop("top_p")[:2] == ("FP32", [1, 1])
    assert sent == {"max_tokens": (ints, [1, 1], [8]), "top_k": (ints, [1, 1], [2]),
                    "random_seed": ("UINT64", [1, 1], [7]), "stream": ("BOOL", [1, 1], [False])}


def test_ensemble_v0_5_gets_its_required_word_lists(driver: Driver, ensemble_server: LocalServer) -> None:
    done = driver.generate(driver.client("ensemble-v0.5", ensemble_server.grpc_url, profile=None), SAY)
    assert done.text == "Hello there\n<extra_id_1>"  # no profile, no stops: the marker stays
    inputs = ensemble_server.last_request("ensemble-v0.5")["inputs"]
    assert inputs["bad_words"]["data"] == [""] and inputs["stop_words"]["data"] == [""]
    assert inputs["max_tokens"] == {"datatype": "UINT32", "shape": [1, 1], "data": [512]}


def test_ensemble_stream_ends_on_the_final_flag_of_a_data_response(driver: Driver,
                                                                    ensemble_server: LocalServer) -> None:
    client = driver.client("ensemble-streaming", ensemble_server.grpc_url, stream_timeout=30)
    started = time.monotonic()
    chunks = driver.stream(client, "[[say=a b c d]]", GenerationParams(max_tokens=3))
    assert time.monotonic() - started < 5  # ended by the flag, not by the 30 s inactivity timeout
    assert [c.text for c in chunks if c.text] == ["a ", "b ", "c "] and chunks[-1].finish_reason == "length"
    assert ensemble_server.last_request("ensemble-streaming")["inputs"]["stream"]["data"] == [True]
    stopped = driver.stream(client, "[[say=x y\\n<extra_id_1>User z]]")
    assert "".join(c.text for c in stopped) == "x y" and stopped[-1].finish_reason == "stop"
    joined = driver.batch(client, [f"[[say=r{i} s]]" for i in range(3)], GenerationParams(max_tokens=4))
    assert [c.text for c in joined] == ["r0 s", "r1 s", "r2 s"]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("model", ["ensemble-streaming", "ensemble-streaming-empty-final"])
def test_decoupled_ensemble_sends_stream_false_for_whole_answers(driver: Driver, ensemble_server: LocalServer,
                                                                 model: str, protocol: str) -> None:
    url = ensemble_server.grpc_url if protocol == "grpc" else ensemble_server.http_url
    client = driver.client(model, url, stream_timeout=30)
    started = time.monotonic()
    assert driver.generate(client, "Q " + SAY, FULL) == Completion("Hello there", "stop", model, "Q " + SAY)
    assert time.monotonic() - started < 5  # either ending (final flag on data, empty final) ends it
    [logged] = ensemble_server.requests(model)  # one request, answered with one whole (echoed) response
    assert logged["inputs"]["stream"] == {"datatype": "BOOL", "shape": [1, 1], "data": [False]}
    assert logged["inputs"]["text_input"] == {"datatype": "BYTES", "shape": [1, 1], "data": ["Q " + SAY]}
    assert logged["inputs"]["stop_words"] == {"datatype": "BYTES", "shape": [1, 2], "data": ["<extra_id_1>", "a,b"]}
    chunks = driver.stream(client, "[[say=a b c d]]", GenerationParams(max_tokens=3))
    assert [c.text for c in chunks if c.text] == ["a ", "b ", "c "] and chunks[-1].finish_reason == "length"
    assert ensemble_server.last_request(model)["inputs"]["stream"]["data"] == [True]
    ensemble_server.clear_log()
    joined = driver.batch(client, [f"[[say=r{i} s]]" for i in range(3)], GenerationParams(max_tokens=4))
    assert [c.text for c in joined] == ["r0 s", "r1 s", "r2 s"]
    batched = ensemble_server.requests(model)
    assert len(batched) == (3 if protocol == "http" else 1)  # the generate extension has no batching
    assert all(r["inputs"]["stream"]["data"] == [False] * r["inputs"]["stream"]["shape"][0] for r in batched)
