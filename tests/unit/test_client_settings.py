"""`ClientSettings`: one frozen, hashable, validated-once settings object; every client default declared
once; secrets out of every repr; unknown options refused with a did-you-mean."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from steerlm.client import CallOptions, ClientSettings
from steerlm.client.memo import cached_settings
from steerlm.client.settings import DEFAULT_TIMEOUT, DEFAULT_URL, Headers
from steerlm.errors import ConfigurationError
from steerlm.transport import MemoryTransport

SRC = Path(__file__).parents[2] / "src"
CHAT = "Llama2-70B-SteerLM-Chat"


def test_defaults_normalisation_and_equality() -> None:
    settings = ClientSettings(CHAT)
    assert settings.urls == (DEFAULT_URL,) and settings.timeout == DEFAULT_TIMEOUT == settings.stream_timeout
    assert settings.profile is not None and settings.profile.name == CHAT and settings.probe_timeout <= 5.0
    same = ClientSettings(CHAT, ["127.0.0.1:8001"], headers={})
    assert same == settings and hash(same) == hash(settings)  # a bare host:port is gRPC; equal → same key
    assert ClientSettings(CHAT, timeout=5) != settings
    assert replace(settings, timeout=2.0).timeout == 2.0  # replace() re-validates
    with pytest.raises(ConfigurationError, match="timeout"):
        replace(settings, timeout=-1.0)


@pytest.mark.parametrize(("options", "words"), [
    ({"url": "ftp://x:1"}, ["ftp", "Accepted forms"]),
    ({"timeout": 0}, ["timeout must be a positive number"]),
    ({"ready_timeout": -1}, ["ready_timeout"]),
    ({"max_retries": -1}, ["max_retries"]),
    ({"max_retries": True}, ["max_retries"]),
    ({"headers": "x"}, ["headers must be a dict"]),
    ({"headers": {"x": 1}}, ["must be a string"]),
    ({"headers": {"authorization": "Bearer k\n"}}, ["line break"]),
    ({"api_key": "SECRET\n"}, ["line break", "strip"]),
    ({"signature": "nope"}, ["signature must be"]),
    ({"url": "grpcs://h:1", "verify_ssl": False}, ["not available over gRPC"]),
    ({"url": "grpcs://h:1", "client_certificate": "-----BEGIN CERTIFICATE-----\nx\n"}, ["needs both"]),
    ({"transport": object()}, ["transport must have connect()"]),
    ({"profile": "nope"}, ["nope"]),
])
def test_bad_settings_are_configuration_errors_that_say_what_to_fix(options: dict[str, object],
                                                                     words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        ClientSettings(CHAT, **options)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)
    assert "SECRET" not in str(info.value)


def test_unknown_options_are_refused_with_a_did_you_mean() -> None:
    with pytest.raises(ConfigurationError, match="'ready_timout' \\(did you mean 'ready_timeout'\\?\\)"):
        ClientSettings.build(CHAT, ready_timout=3)


def test_secrets_never_show_in_a_repr() -> None:
    settings = ClientSettings(CHAT, api_key="SECRET", headers={"X-Api-Key": "KEY2", "x-team": "a"})
    assert dict(settings.headers)["authorization"] == "Bearer SECRET"
    for shown in (repr(settings), repr(settings.headers), str(settings.headers)):
        assert "SECRET" not in shown and "KEY2" not in shown and "x-team" in shown
    assert "'authorization': '***'" in repr(settings)
    call = CallOptions.of(api_key="CALLKEY", headers={"cookie": "C"})
    assert call is not None and "CALLKEY" not in repr(call) and "'cookie': '***'" in repr(call)
    assert CallOptions.of() is None


def test_an_explicit_authorization_header_wins_over_the_key() -> None:
    assert dict(ClientSettings(CHAT, api_key="k", headers={"Authorization": "Basic x"}).headers) == {
        "authorization": "Basic x"}
    merged = Headers({"authorization": "Bearer old", "x": "1"}).merged({"y": "2"}, "new")
    assert dict(merged) == {"authorization": "Bearer new", "x": "1", "y": "2"}


def test_memoized_settings_for_the_adapters() -> None:
    transport = MemoryTransport(lambda r: "x")
    first = cached_settings(CHAT, ["grpc://h:1"], headers={"a": "b"}, transport=transport, timeout=None)
    assert cached_settings(CHAT, ["grpc://h:1"], headers={"a": "b"}, transport=transport) is first
    assert cached_settings(CHAT, ["grpc://h:1"], headers={"a": "c"}, transport=transport) is not first


def test_each_client_default_is_declared_once() -> None:
    """A grep finds each default once: the constants in steerlm.client.settings (adapters use them)."""
    sources = {p: p.read_text() for p in SRC.rglob("*.py") if not {"serve", "steerlm_testing"} & set(p.parts)}
    for pattern in (r'(?m)^\w+ = "(grpc|http)://', r'default="(grpc|http)://', r"\b60\.0\b", r"\b30\.0\b",
                    r"default=2\b", r"_PROBE_TIMEOUT = ", r"timeout: float = \d"):
        found = [p.name for p, text in sources.items() if re.search(pattern, text)]
        assert len(found) <= 1, f"{pattern} is declared in {found}"
