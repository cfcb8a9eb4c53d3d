"""Request headers and credentials: validated without echoing them, redacted wherever they are shown.

* `check_headers` validates a headers mapping once, at construction: names are HTTP tokens, values
  printable ASCII without line breaks (what both HTTP and gRPC metadata can carry). A bad value is
  reported by header name, the kind of character and its position — never by the value itself, which
  may be a key (a key read from a file often ends with ``"\\n"``).
* `bearer` turns an ``api_key`` into the ``authorization`` header value, with the same checks.
* `is_secret_header` / `redact_headers`: headers that carry credentials (``authorization``,
  ``proxy-authorization``, ``cookie``, ``x-api-key``, ``triton-access-token`` and the like) are shown as
  ``'***'`` in reprs, serializations and callback payloads.

Framework-neutral: the core client and both adapters call these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from steerlm.errors import ConfigurationError

__all__ = [
    "REDACTED",
    "SecretHeaders",
    "auth_headers",
    "bearer",
    "check_headers",
    "hide_secrets",
    "is_secret_header",
    "redact_headers",
    "redact_params",
    "secret_text",
    "shows_secrets",
]

REDACTED = "***"
_SECRET_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "api-key",
                           "x-api-key"})
_SECRET_PARTS = ("auth", "token", "secret", "password", "api-key", "apikey", "api_key", "cookie", "credential")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def is_secret_header(name: str) -> bool:
    """Whether header `name` carries a credential (compared case-insensitively)."""
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def redact_headers(headers: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`headers` with the values of credential headers replaced by ``'***'``."""
    if headers is None or not isinstance(headers, Mapping):
        return None if headers is None else {}
    return {k: REDACTED if isinstance(k, str) and is_secret_header(k) else v for k, v in headers.items()}


def _bad_character(value: str) -> str | None:
    """What is wrong with a header value (without quoting it), or None."""
    for index, char in enumerate(value):
        if char in "\r\n":
            where = "at the end" if not value[index:].strip() else f"at position {index}"
            return (f"contains a line break {where}; strip it (a key read from a file often ends with a "
                    "newline)")
        if not " " <= char <= "~" and char != "\t":
            kind = "a control character" if ord(char) < 0x80 else "a non-ASCII character"
            return f"contains {kind} at position {index}; header values must be printable ASCII"
    return None


class SecretHeaders:
    """Headers wrapped so that no repr or serializer can show them (like pydantic's `SecretStr`)."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Mapping[str, Any]) -> None:
        self._headers = headers

    def get_secret_value(self) -> Mapping[str, Any]:
        return self._headers

    def __repr__(self) -> str:
        return repr(redact_headers(self._headers))

    __str__ = __repr__


def hide_secrets(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Per-call keyword arguments with ``api_key`` / ``headers`` wrapped so callback payloads show no secret."""
    out = dict(kwargs)
    key = out.get("api_key")
    if isinstance(key, str):
        from pydantic import SecretStr

        out["api_key"] = SecretStr(key)
    headers = out.get("headers")
    if isinstance(headers, Mapping):
        out["headers"] = SecretHeaders(headers)
    return out


def check_headers(headers: object, *, what: str = "headers") -> dict[str, str]:
    """`headers` as a plain dict, or ConfigurationError saying what to fix (values are never quoted)."""
    if isinstance(headers, SecretHeaders):
        headers = headers.get_secret_value()
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{what} must be a dict of header name -> string value, got "
                                 f"{type(headers).__name__}")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            shown = repr(name) if isinstance(name, str) and len(name) <= 64 else type(name).__name__
            raise ConfigurationError(f"{what}: invalid header name {shown}; use letters, digits and '-' "
                                     "(an HTTP token, e.g. 'x-request-id')")
        if not isinstance(value, str):
            raise ConfigurationError(f"{what}[{name!r}] must be a string, got {type(value).__name__}")
        problem = _bad_character(value)
        if problem is not None:
            raise ConfigurationError(f"{what}[{name!r}]: the value {problem}")
        out[name] = value
    return out


def secret_text(value: object, *, what: str = "api_key") -> str | None:
    """The plain text of a secret given as a str or a pydantic-style ``SecretStr`` (None stays None)."""
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else value
    if not isinstance(text, str):
        raise ConfigurationError(f"{what} must be a string, got {type(value).__name__}")
    return text


def bearer(api_key: object) -> str | None:
    """``"Bearer <key>"`` for the ``authorization`` header, validated like a header value (None: no key)."""
    key = secret_text(api_key)
    if key is None:
        return None
    if not key.strip():
        raise ConfigurationError("api_key is empty; pass the key, or None for no authorization header")
    problem = _bad_character(key)
    if problem is not None:
        raise ConfigurationError(f"api_key {problem}")
    return f"Bearer {key}"


def auth_headers(headers: object, api_key: object) -> dict[str, str]:
    """Checked `headers` plus ``authorization: Bearer <api_key>`` unless they already authorize."""
    checked = check_headers(headers)
    value = bearer(api_key)
    if value is not None and not any(k.lower() == "authorization" for k in checked):
        checked["authorization"] = value
    return checked


_SECRET_PARAMS = frozenset({"api_key", "client_key"})


def shows_secrets(params: Mapping[str, Any]) -> bool:
    """Whether `params` hold headers or a secret parameter (`redact_params` would change them)."""
    return params.get("headers") is not None or any(params.get(name) is not None for name in _SECRET_PARAMS)


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Call parameters fit to show (callback payloads, logs): secrets as ``'***'``, headers redacted."""
    out = dict(params)
    if not shows_secrets(out):
        return out
    for name in _SECRET_PARAMS & out.keys():
        if out[name] is not None:
            out[name] = REDACTED
    if isinstance(out.get("headers"), Mapping):
        out["headers"] = redact_headers(out["headers"])
    return out
