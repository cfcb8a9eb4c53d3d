"""Mutual TLS on loopback, against servers that REQUIRE a client certificate, with a CA made here.

* ``grpcs://``: Triton's own gRPC TLS (``steerlm serve --grpc-tls-cert/-key/-client-ca``, PyTriton's
  ``grpc_use_ssl_mutual``);
* ``https://``: Triton's HTTP endpoint has no TLS, so a TLS proxy that requires client certificates
  (`steerlm_testing.tls.TlsProxy`) sits in front of the same server;
* ``openai+https://``: the same proxy in front of the OpenAI-compatible double.

Every refusal — no client certificate, one from a CA the server does not trust, an expired one, an
untrusted / expired server certificate, a hostname the server certificate does not name — must be a
`ConfigurationError` at once (not waited for, not retried as an outage), sync and async.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_steerlm import ChatSteerLM
from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.errors import ConfigurationError
from steerlm.prompts import format_prompt
from steerlm_testing import LocalServer
from steerlm_testing.openai_double import OpenAIDouble
from steerlm_testing.tls import Credential, Pki, TlsProxy, make_pki

pytestmark = pytest.mark.integration

MODEL = "nemo-v2.0"
PROMPT = format_prompt([{"role": "user", "content": "[[say=over mutual TLS]]"}], profile="Llama2-70B-SteerLM-Chat")
FAST = 3.0  # seconds: a refusal is raised at once (the readiness wait alone would take ready_timeout=20 s)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The local server with Triton's gRPC endpoint requiring a client certificate signed by `pki.ca`."""
    args = ["--grpc-tls-cert", str(pki.server.cert), "--grpc-tls-key", str(pki.server.key),
            "--grpc-tls-client-ca", str(pki.ca.cert)]
    with LocalServer(extra_args=args, workdir=tmp_path_factory.mktemp("mtls-server"), stop_timeout=20.0) as server:
        assert server.grpc_url.startswith("grpcs://")
        yield server


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def https_proxy(mtls_server: LocalServer, pki: Pki) -> Iterator[TlsProxy]:
    with TlsProxy({"http": _port(mtls_server.http_address)}, pki.server, client_ca=pki.ca.cert) as proxy:
        yield proxy


@pytest.fixture(params=["grpcs", "https"])
def mtls_url(request: pytest.FixtureRequest, mtls_server: LocalServer, https_proxy: TlsProxy) -> str:
    if request.param == "grpcs":
        return f"grpcs://127.0.0.1:{_port(mtls_server.grpc_address)}"
    return f"https://127.0.0.1:{https_proxy.ports['http']}"


def _generate(mode: str, url: str, **kwargs: Any) -> str:
    kwargs = {"max_retries": 2, "ready_timeout": 20.0, **kwargs}
    if mode == "sync":
        with SteerLMClient(MODEL, url, **kwargs) as client:
            return client.generate(PROMPT).text

    async def run() -> str:
        async with AsyncSteerLMClient(MODEL, url, **kwargs) as client:
            return (await client.generate(PROMPT)).text

    return asyncio.run(run())


def _pair(credential: Credential, as_text: bool) -> dict[str, Any]:
    if as_text:
        return {"client_certificate": credential.cert.read_text(), "client_key": credential.key.read_text()}
    return {"client_certificate": str(credential.cert), "client_key": credential.key}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("as_text", [False, True], ids=["paths", "pem-text"])
def test_mutual_tls_with_a_client_certificate(mtls_url: str, pki: Pki, mode: str, as_text: bool) -> None:
    roots = pki.ca.cert.read_bytes() if as_text else str(pki.ca.cert)
    assert _generate(mode, mtls_url, root_certificates=roots, **_pair(pki.client, as_text)) == "over mutual TLS"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("client", [None, "stranger", "expired_client"])
def test_a_refused_client_certificate_is_a_configuration_error(mtls_url: str, pki: Pki, mode: str,
                                                               client: str | None) -> None:
    pair = _pair(getattr(pki, client), False) if client else {}
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="client_certificate= and client_key=") as refused:
        _generate(mode, mtls_url, root_certificates=str(pki.ca.cert), **pair)
    assert time.monotonic() - started < FAST
    assert ("no client certificate" in str(refused.value)) == (client is None)
    assert "PRIVATE KEY" not in str(refused.value)


@pytest.fixture(scope="module")
def bad_servers(local_server: LocalServer, pki: Pki) -> Iterator[dict[str, TlsProxy]]:
    """TLS proxies (gRPC and HTTP) in front of the plain local server, each with a faulty server certificate."""
    targets = {"grpc": _port(local_server.grpc_address), "http": _port(local_server.http_address)}
    proxies = {name: TlsProxy(targets, getattr(pki, name)) for name in ("expired_server", "localhost_only")}
    for proxy in proxies.values():
        proxy.__enter__()
    yield proxies
    for proxy in proxies.values():
        proxy.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("scheme", ["grpcs", "https"])
@pytest.mark.parametrize(("server_cert", "ca", "why"), [
    ("expired_server", "ca", "expired"),
    ("localhost_only", "ca", "(?i)hostname|not valid for|peer name"),  # the URL says 127.0.0.1
    ("localhost_only", "other_ca", "(?i)verify"),  # signed by a CA the client does not trust
])
def test_a_bad_server_certificate_is_a_configuration_error(bad_servers: dict[str, TlsProxy], pki: Pki, mode: str,
                                                           scheme: str, server_cert: str, ca: str, why: str) -> None:
    proxy = bad_servers[server_cert]
    url = f"{scheme}://127.0.0.1:{proxy.ports['grpc' if scheme == 'grpcs' else 'http']}"
    roots: Path = getattr(pki, ca).cert
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=why):
        _generate(mode, url, root_certificates=str(roots))
    assert time.monotonic() - started < FAST


def test_the_same_server_over_localhost_verifies(bad_servers: dict[str, TlsProxy], pki: Pki) -> None:
    """The hostname case above fails for the name only: the certificate is good for localhost."""
    url = f"grpcs://localhost:{bad_servers['localhost_only'].ports['grpc']}"
    assert _generate("sync", url, root_certificates=str(pki.ca.cert)) == "over mutual TLS"


def test_tls_material_is_checked_at_construction(pki: Pki, tmp_path: Path) -> None:
    url = "grpcs://127.0.0.1:9"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"root_certificates": str(garbage)}, "no valid PEM certificate"),
        ({"root_certificates": "/no/such/ca.pem"}, "cannot read"),
        ({"root_certificates": "plain words"}, "cannot read"),
        ({"client_certificate": str(pki.client.cert)}, "without client_key"),
        ({"client_key": str(pki.client.key)}, "without client_certificate"),
        ({"client_certificate": str(pki.client.cert), "client_key": str(pki.stranger.key)}, "cannot be used together"),
        ({"client_certificate": str(pki.client.cert), "client_key": str(garbage)}, "cannot be used together"),
        ({"client_certificate": 42, "client_key": str(pki.client.key)}, "PEM file path or PEM text"),
    ]
    for kwargs, fragment in cases:
        for cls in (SteerLMClient, AsyncSteerLMClient):
            with pytest.raises(ConfigurationError, match=fragment) as bad:
                cls(MODEL, url, **kwargs)
            assert "PRIVATE KEY" not in str(bad.value)


@pytest.fixture(scope="module")
def openai_https(pki: Pki) -> Iterator[tuple[str, str]]:
    """The OpenAI-compatible double behind a TLS proxy that requires client certificates: (url, model)."""
    with OpenAIDouble(api_key="sk-test") as double, TlsProxy({"http": double.port}, pki.server,
                                                              client_ca=pki.ca.cert) as proxy:
        yield f"openai+https://127.0.0.1:{proxy.ports['http']}{double.base}", double.model


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_mutual_tls_over_the_openai_compatible_https_form(openai_https: tuple[str, str], pki: Pki,
                                                          mode: str) -> None:
    url, model = openai_https
    chat = ChatSteerLM(model=model, url=url, profile="Llama2-70B-SteerLM-Chat", api_key="sk-test",
                       root_certificates=str(pki.ca.cert), client_certificate=str(pki.client.cert),
                       client_key=str(pki.client.key), max_retries=0)
    text = "[[say=over mutual TLS]]"
    reply = chat.invoke(text) if mode == "sync" else asyncio.run(chat.ainvoke(text))
    assert reply.content == "over mutual TLS"
    refused = ChatSteerLM(model=model, url=url, profile="Llama2-70B-SteerLM-Chat", api_key="sk-test",
                          root_certificates=str(pki.ca.cert), max_retries=0)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="client_certificate= and client_key="):
        refused.invoke(text) if mode == "sync" else asyncio.run(refused.ainvoke(text))
    assert time.monotonic() - started < FAST
