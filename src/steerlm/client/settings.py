"""`ClientSettings`: every client setting and every client default, declared once and validated once.

The core clients, both framework adapters and the reward model build one `ClientSettings` from their
arguments or fields; it is frozen and hashable, so it is also the client-cache key (equal settings share
one client, its connections and its readiness wait). Defaults live here and nowhere else
(`DEFAULT_URL`, `DEFAULT_TIMEOUT`, ...): the adapters' fields use these constants.

Per-call options that only change one request (`CallOptions`: timeout, headers, api_key) are not
settings: they travel with the request on the same client.

Secrets: `api_key` becomes an ``authorization: Bearer ...`` header; headers named like a credential
(``authorization``, ``proxy-authorization``, ``x-api-key``, ``api-key``, cookies) show as ``'***'`` in
every repr.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import InitVar, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from steerlm.errors import ConfigurationError
from steerlm.profiles import ModelProfile, find_profile, get_profile
from steerlm.secrets import bearer, check_headers, redact_headers
from steerlm.transport.tls import PemInput, read_client_pair, read_root_certificates
from steerlm.transport.urls import Endpoint, parse_urls

if TYPE_CHECKING:
    from steerlm.transport.factory import Transport

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PROBE_TIMEOUT",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_REWARD_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "DEFAULT_VERIFY_SSL",
    "CallOptions",
    "ClientSettings",
    "Headers",
]

DEFAULT_URL = "grpc://127.0.0.1:8001"
DEFAULT_REWARD_URL = "http://127.0.0.1:5555"  # NeMo-Aligner's reward model server (HTTP only)
DEFAULT_TIMEOUT = 60.0  # seconds, per request (and the default stream inactivity timeout)
DEFAULT_MAX_RETRIES = 2  # extra attempts after a retryable failure (backoff 0.5 s doubling to 8 s)
DEFAULT_READY_TIMEOUT = 30.0  # seconds to wait while the server answers but the model is (re)loading
DEFAULT_PROBE_TIMEOUT = 5.0  # seconds for one readiness / index probe (at most `timeout`)
DEFAULT_VERIFY_SSL = True  # verify the server's certificate (https://; gRPC always verifies)



def _seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigurationError(f"{name} must be a {kind} number of seconds, got {value!r}")
    return float(value)


class Headers(Mapping[str, str]):
    """Request headers (names lower-cased): an immutable, hashable mapping whose repr hides secrets."""

    __slots__ = ("_items",)
    _items: tuple[tuple[str, str], ...]

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        checked = check_headers(items) if not isinstance(items, Headers) else dict(items._items)
        self._items = tuple(sorted((name.lower(), value) for name, value in checked.items()))

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key.lower():
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return repr(redact_headers(dict(self._items)))

    def merged(self, other: Mapping[str, str] | None, api_key: Any = None) -> Headers:
        """These headers updated by `other`, plus ``authorization: Bearer <api_key>`` when a key is given
        (an explicit ``authorization`` header wins over the key)."""
        extra = Headers(other)
        out = {**dict(self._items), **dict(extra._items)}
        value = bearer(api_key)
        if value is not None and "authorization" not in extra:
            out["authorization"] = value
        return Headers(out)


@dataclass(frozen=True)
class CallOptions:
    """Options of one request on an existing client (no new client, connection or readiness wait).

    `timeout` replaces the client's `timeout` for this request; `headers` are added to the client's;
    `api_key` sends ``authorization: Bearer <key>`` for this request. The repr hides secrets.
    """

    timeout: float | None = None
    headers: Headers | None = None
    api_key: InitVar[Any] = None

    def __post_init__(self, api_key: Any) -> None:
        if self.timeout is not None:
            object.__setattr__(self, "timeout", _seconds("timeout", self.timeout))
        if self.headers is not None or api_key is not None:
            object.__setattr__(self, "headers", Headers().merged(self.headers, api_key))

    @staticmethod
    def of(timeout: float | None = None, headers: Mapping[str, str] | None = None,
           api_key: Any = None) -> CallOptions | None:
        """The options for these per-call values, or None when none is set (the common case)."""
        if timeout is None and not headers and api_key is None:
            return None
        return CallOptions(timeout, Headers(headers) if headers else None, api_key)


@dataclass(frozen=True, repr=False, init=False)
class ClientSettings:
    """Everything a client is configured with; frozen, hashable, validated once at construction.

    ``ClientSettings(model, url=...)``, keyword arguments as below. `url` is one URL or a list
    (replicas, tried in turn): ``grpc://``, ``grpcs://``, ``http://``, ``https://``, ``nemo-rest://``,
    ``openai+http://host:port/v1`` / ``openai+https://`` (OpenAI-compatible servers) or a bare
    ``host:port`` (gRPC). `transport` makes the connections (default: from each URL's scheme;
    `steerlm.transport.MemoryTransport` for tests without a server).

    Timeouts (seconds): `timeout` per request; `stream_timeout` the inactivity limit of a stream (None:
    `timeout`); `ready_timeout` how long to wait while the server answers but the model is loading, or
    while a server the client was using restarts; `probe_timeout` one readiness probe. `max_retries`
    retries of retryable errors (0.5 s doubling to 8 s; a refused first contact fails after them).
    TLS: `root_certificates` (CA, PEM path or text), `verify_ssl` (https only), `client_certificate` and
    `client_key` (mutual TLS). `headers` and `api_key` (sent as a bearer token) go with every request.
    `signature` forces a codec (None: detected from the model config).
    """

    model: str
    url: tuple[str, ...]
    profile: ModelProfile | None = field(compare=False)
    transport: Transport | None
    timeout: float
    stream_timeout: float
    ready_timeout: float
    probe_timeout: float
    max_retries: int
    headers: Headers
    root_certificates: bytes | None
    verify_ssl: bool
    client_certificate: bytes | None
    client_key: bytes | None
    signature: str | None
    endpoints: tuple[Endpoint, ...] = field(init=False, compare=False)
    profile_name: str | None = field(init=False)

    def __init__(
        self, model: str, url: str | Sequence[str] = DEFAULT_URL, *, profile: str | ModelProfile | None = None,
        transport: Transport | None = None, timeout: float = DEFAULT_TIMEOUT, stream_timeout: float | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT, probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES, headers: Mapping[str, str] | None = None, api_key: Any = None,
        root_certificates: PemInput = None, verify_ssl: bool = DEFAULT_VERIFY_SSL,
        client_certificate: PemInput = None, client_key: PemInput = None,
        signature: str | None = None,
    ) -> None:
        from steerlm.transport.signatures import SIGNATURES

        put = object.__setattr__
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError(f"model must be the Triton model name, got {model!r}")
        put(self, "model", model)
        endpoints = parse_urls(url)
        put(self, "endpoints", endpoints)
        put(self, "url", tuple(e.url for e in endpoints))
        resolved = get_profile(profile) if profile is not None else find_profile(model)
        put(self, "profile", resolved)
        put(self, "profile_name", resolved.name if resolved is not None else None)
        if transport is not None and not (hasattr(transport, "connect") and hasattr(transport, "aconnect")):
            raise ConfigurationError(f"transport must have connect() and aconnect() (a steerlm Transport), "
                                     f"got {type(transport).__name__}")
        put(self, "transport", transport)
        seconds = _seconds("timeout", timeout)
        put(self, "timeout", seconds)
        put(self, "stream_timeout", seconds if stream_timeout is None else _seconds("stream_timeout", stream_timeout))
        put(self, "ready_timeout", _seconds("ready_timeout", ready_timeout, allow_zero=True))
        put(self, "probe_timeout", min(_seconds("probe_timeout", probe_timeout), seconds))
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        put(self, "max_retries", max_retries)
        put(self, "headers", Headers().merged(headers, api_key))
        if signature is not None and (not isinstance(signature, str) or signature not in SIGNATURES):
            raise ConfigurationError(f"signature must be None (detect) or one of {sorted(SIGNATURES)}, "
                                     f"got {signature!r}")
        put(self, "signature", signature)
        self._tls(endpoints, root_certificates, verify_ssl, client_certificate, client_key)

    def _tls(self, endpoints: tuple[Endpoint, ...], roots: PemInput, verify_ssl: bool,
             certificate: PemInput, key: PemInput) -> None:
        put = object.__setattr__
        if not isinstance(verify_ssl, bool):
            raise ConfigurationError(f"verify_ssl must be True or False, got {verify_ssl!r}")
        if any(e.ssl and e.protocol == "grpc" for e in endpoints) and not verify_ssl:
            raise ConfigurationError(
                "verify_ssl=False is not available over gRPC (grpcio always verifies the server); pass "
                "root_certificates= with the server's CA, or use https://"
            )
        tls = any(e.ssl for e in endpoints)
        pair = read_client_pair(certificate, key)
        pem = read_root_certificates(roots)  # checked whatever the URL: a bad path is a mistake either way
        put(self, "verify_ssl", verify_ssl)
        put(self, "root_certificates", pem if tls else None)
        put(self, "client_certificate", pair[0] if tls else None)
        put(self, "client_key", pair[1] if tls else None)

    def __hash__(self) -> int:
        """The dataclass hash of the compared fields, computed once (the settings are the client-cache
        key, looked up on every call); never pickled (string hashes differ between processes)."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self) if f.compare))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_hash", None)
        return state

    # ------------------------------------------------------------------ views
    @property
    def urls(self) -> tuple[str, ...]:
        """The canonical URLs (``scheme://host:port``), in order."""
        return tuple(e.url for e in self.endpoints)

    def __repr__(self) -> str:
        shown = [f"model={self.model!r}", f"url={list(self.urls)!r}"]
        defaults = {"timeout": DEFAULT_TIMEOUT, "stream_timeout": self.timeout, "ready_timeout": DEFAULT_READY_TIMEOUT,
                    "probe_timeout": min(DEFAULT_PROBE_TIMEOUT, self.timeout), "max_retries": DEFAULT_MAX_RETRIES,
                    "headers": Headers(), "verify_ssl": DEFAULT_VERIFY_SSL, "transport": None, "signature": None}
        for name in ("profile_name", "transport", "timeout", "stream_timeout", "ready_timeout", "probe_timeout",
                     "max_retries", "headers", "verify_ssl", "signature"):
            value = getattr(self, name)
            if name in defaults and value == defaults[name]:
                continue
            shown.append(f"{name}={value!r}")
        for name in ("root_certificates", "client_certificate"):
            if getattr(self, name) is not None:
                shown.append(f"{name}=<PEM>")
        if self.client_key is not None:
            shown.append("client_key='***'")
        return f"ClientSettings({', '.join(shown)})"

    @classmethod
    def build(cls, model: Any = None, url: Any = None, **options: Any) -> ClientSettings:
        """`ClientSettings(model, url, **options)` with unknown option names refused (did-you-mean)."""
        names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        unknown = sorted(set(options) - set(names))
        if unknown:
            hints = [f"{u!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(u, names, 1))
                     else repr(u) for u in unknown]
            raise ConfigurationError(f"unknown client option(s) {', '.join(hints)}; the options are "
                                     f"{', '.join(n for n in names if n not in ('model', 'url'))}")
        if url is not None:
            options["url"] = url
        return cls(model, **options)
