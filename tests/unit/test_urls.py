"""URL parsing: accepted forms, the bare-address = gRPC rule, failover lists and clear errors."""

from __future__ import annotations

import pytest

from steerlm.errors import ConfigurationError
from steerlm.transport.urls import ACCEPTED_FORMS, Endpoint, parse_url, parse_urls


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("grpc://h:8001", Endpoint("grpc", "h:8001", False, "grpc://h:8001")),
        ("grpcs://h:8443", Endpoint("grpc", "h:8443", True, "grpcs://h:8443")),
        ("http://127.0.0.1:8000", Endpoint("http", "127.0.0.1:8000", False, "http://127.0.0.1:8000")),
        ("https://gw.example.com", Endpoint("http", "gw.example.com:443", True, "https://gw.example.com:443")),
        ("https://gw.example.com:8443/triton/", Endpoint("http", "gw.example.com:8443/triton", True,
                                                        "https://gw.example.com:8443/triton")),
        ("localhost:8001", Endpoint("grpc", "localhost:8001", False, "grpc://localhost:8001")),
        ("  GRPC://Host:1  ", Endpoint("grpc", "host:1", False, "grpc://host:1")),
        ("grpc://[::1]:8001", Endpoint("grpc", "[::1]:8001", False, "grpc://[::1]:8001")),
        ("grpcs://secure.example", Endpoint("grpc", "secure.example:443", True, "grpcs://secure.example:443")),
    ],
)
def test_accepted_forms(url: str, expected: Endpoint) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["", "   ", "ftp://h:1", "h", "http://h", "grpc://h", "grpc://h:1/path", "h:1/path", "http://:80",
     "http://h:99999", "http://h:abc", "http://u:p@h:1", "http://h:1?x=1", "grpc://h:0", None, 8001],
)
def test_bad_urls_name_the_accepted_forms(url: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_url(url)  # type: ignore[arg-type]
    assert ACCEPTED_FORMS in str(info.value)
    assert isinstance(info.value, ValueError)


def test_failover_list_keeps_order() -> None:
    endpoints = parse_urls(["grpc://a:1", "http://b:2", "c:3"])
    assert [e.url for e in endpoints] == ["grpc://a:1", "http://b:2", "grpc://c:3"]
    assert parse_urls("a:1") == (parse_url("a:1"),)


@pytest.mark.parametrize("value", [[], (), ["grpc://a:1", "nope"], {"a": 1}])
def test_bad_failover_lists(value: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_urls(value)  # type: ignore[arg-type]
