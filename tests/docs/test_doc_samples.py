"""Every Python sample of README.md and docs/ runs as written, against a local server.

The samples of one page run in order in one namespace (like notebook cells; top-level ``await`` is
allowed, all of a page's awaits share one event loop). A block marked ``<!-- sample: no-run REASON -->``
is compiled only. The servers the samples talk to are started once by this module, on free loopback
ports: a `LocalServer` with the kit's ``docs`` preset (scripted models under every model name the docs
use, so it is fast) and the NeMo REST test double. Before a sample runs, this test rewrites the
addresses in its text to those servers' real ones: ``localhost:8001`` / ``127.0.0.1:8001`` (gRPC) and
``localhost:8000`` / ``127.0.0.1:8000`` (HTTP) to the local server, ``localhost:1427`` to the REST
double. Nothing else in a sample is changed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from samples import ROOT, Sample, pages, samples

from steerlm_testing import LocalServer
from steerlm_testing.rest_double import RestDouble

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_PAGES = [page for page in pages() if samples(page)]


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(preset="docs", workdir=tmp_path_factory.mktemp("docs-server"), startup_timeout=180.0,
                     stop_timeout=20.0) as server:
        yield server


@pytest.fixture(scope="module")
def addresses(docs_server: LocalServer) -> Iterator[dict[str, str]]:
    with RestDouble() as rest:
        yield {
            "localhost:8001": docs_server.grpc_address, "127.0.0.1:8001": docs_server.grpc_address,
            "localhost:8000": docs_server.http_address, "127.0.0.1:8000": docs_server.http_address,
            "localhost:1427": rest.address,
        }


def _rewrite(code: str, addresses: dict[str, str]) -> str:
    for written, real in addresses.items():
        code = code.replace(written, real)
    return code


def _compile(sample: Sample, code: str) -> object:
    return compile(code, sample.id, "exec", flags=_FLAGS, dont_inherit=True)


@pytest.mark.parametrize("page", _PAGES, ids=[str(p.relative_to(ROOT)) for p in _PAGES])
def test_page_samples_run(page: Path, addresses: dict[str, str]) -> None:
    namespace: dict[str, object] = {"__name__": f"doc_sample_{page.stem.replace('-', '_')}"}
    loop = asyncio.new_event_loop()
    try:
        for sample in samples(page):
            code = _compile(sample, _rewrite(sample.code, addresses))
            if sample.no_run:
                continue
            result = eval(code, namespace)  # the repository's own documentation
            if inspect.iscoroutine(result):  # the sample has a top-level await
                loop.run_until_complete(result)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_every_sample_is_run_or_says_why_not() -> None:
    """The no-run samples are few and each gives a reason; everything else is Python that compiles."""
    every = [s for page in pages() for s in samples(page)]
    no_run = [s for s in every if s.no_run]
    for sample in every:
        _compile(sample, sample.code)
    assert every and len(no_run) <= 6, [s.id for s in no_run]
    assert all(s.no_run and s.no_run.strip() for s in no_run)


def test_the_quickstart_model_streams_token_by_token(addresses: dict[str, str]) -> None:
    """README's model name is decoupled: stream() yields many chunks, invoke() on it joins them."""
    from langchain_steerlm import ChatSteerLM

    llm = ChatSteerLM(model="SteerLM-SmolLM2-135M-streaming", profile="Llama2-70B-SteerLM-Chat",
                      url=f"grpc://{addresses['localhost:8001']}", max_tokens=12)
    chunks = [chunk.content for chunk in llm.stream("Why is the sky blue?")]
    assert len([c for c in chunks if c]) > 1, chunks
    assert llm.invoke("Why is the sky blue?").content == "".join(chunks)


def test_the_server_console_is_free_of_cpu_noise(docs_server: LocalServer, addresses: dict[str, str]) -> None:
    """Triton's known-harmless messages on a CPU machine stay out of the console (they are in the full log)."""
    console = docs_server.server_log_path.read_text(errors="replace")
    for noise in ("CudaDriverHelper", "NVML", "config modification time", "pinned system memory"):
        assert noise not in console, (noise, console[-2000:])
