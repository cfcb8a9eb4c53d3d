"""Server URL parsing: one `Endpoint` per URL, a list of them for replicas (load-balanced, failover).

Accepted forms: `grpc://host:port`, `grpcs://host:port`, `http://host:port[/base]`,
`https://host:port[/base]` and a bare `host:port`, which means **gRPC** (NeMo's streaming
transport; NeMo's `NemoQuery` reads a bare URL as HTTP instead). TLS schemes default to port 443;
the others need an explicit port. IPv6 hosts go in brackets: `grpc://[::1]:8001`.

`openai+http://host:port/v1` and `openai+https://host:port/v1` select the OpenAI-compatible
transport (`steerlm.transport.openai`): the path is the API base (`/v1` when none is given), so
requests go to `<base>/completions` and `<base>/models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from steerlm.errors import ConfigurationError

__all__ = ["ACCEPTED_FORMS", "Endpoint", "parse_url", "parse_urls"]

Protocol = Literal["grpc", "http", "rest", "openai"]

ACCEPTED_FORMS = (
    "grpc://host:port, grpcs://host:port, http://host:port, https://host:port, "
    "a bare host:port (= gRPC), nemo-rest://host:port (NeMo's legacy REST server, steerlm.transport.rest), "
    "or openai+http://host:port/v1, openai+https://host:port/v1 (an OpenAI-compatible /v1/completions server)"
)
_SCHEMES: dict[str, tuple[Protocol, bool]] = {
    "grpc": ("grpc", False),
    "grpcs": ("grpc", True),
    "http": ("http", False),
    "https": ("http", True),
    "nemo-rest": ("rest", False),
    "nemo-rests": ("rest", True),
    "openai+http": ("openai", False),
    "openai+https": ("openai", True),
}
OPENAI_DEFAULT_BASE = "/v1"


@dataclass(frozen=True)
class Endpoint:
    """One parsed server URL.

    `address` is what tritonclient takes (`host:port`, plus a base path for HTTP); `url` is the
    canonical form used in messages and logs.
    """

    protocol: Protocol
    address: str
    ssl: bool
    url: str


def _bad(url: object, why: str) -> ConfigurationError:
    return ConfigurationError(f"invalid server url {url!r}: {why}. Accepted forms: {ACCEPTED_FORMS}")


def parse_url(url: str) -> Endpoint:
    """Parse one URL; raise ConfigurationError naming the accepted forms when it is not usable."""
    if not isinstance(url, str) or not url.strip():
        raise _bad(url, "expected a non-empty string")
    text = url.strip()
    if "://" not in text:
        if "/" in text:
            raise _bad(url, "a bare address cannot have a path")
        text = "grpc://" + text
    scheme = text.split("://", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise _bad(url, f"unknown scheme {scheme!r}")
    protocol, use_ssl = _SCHEMES[scheme]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    host = parts.hostname
    if not host:
        raise _bad(url, "no host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _bad(url, "credentials, query strings and fragments are not supported")
    if port is None:
        if not use_ssl:
            raise _bad(url, "no port (Triton listens on 8001 for gRPC and 8000 for HTTP by default; "
                        "vLLM, trtllm-serve and NIM on 8000)")
        port = 443
    if port == 0:
        raise _bad(url, "port 0")
    path = parts.path.rstrip("/")
    if path and protocol == "grpc":
        raise _bad(url, "gRPC URLs cannot have a path")
    if protocol == "openai" and not path:
        path = OPENAI_DEFAULT_BASE
    host_text = f"[{host}]" if ":" in host else host
    address = f"{host_text}:{port}{path}"
    return Endpoint(protocol=protocol, address=address, ssl=use_ssl, url=f"{scheme}://{address}")


def parse_urls(url: str | Sequence[str]) -> tuple[Endpoint, ...]:
    """Parse one URL or a list of replicas (`steerlm.client.balancer` orders them) into endpoints."""
    if isinstance(url, str):
        return (parse_url(url),)
    if not isinstance(url, Sequence) or not url:
        raise _bad(url, "expected a URL string or a non-empty list of them")
    return tuple(parse_url(u) for u in url)
