"""TLS material for the connections: CA certificates, the client certificate and key (mutual TLS).

Each is given as a PEM file path or as the PEM text/bytes, read and checked **once** at construction
(`read_root_certificates`, `read_client_pair`): a file that cannot be read, text that is not a PEM
certificate, a key that does not match its certificate, or a certificate without its key raise
`ConfigurationError` at once — they would otherwise surface as a failed handshake on every request.
A private key is never quoted in a message.

`make_ssl_context` builds a client `SSLContext` (stdlib `ssl` or `gevent.ssl`) from the material; the
gRPC connections pass the same PEM bytes to `grpc.ssl_channel_credentials`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from steerlm.errors import ConfigurationError, RequestTimeoutError, ServerUnavailableError, SteerLMError

if TYPE_CHECKING:  # ssl, socket and tempfile load when TLS material is given or a TLS refusal is probed
    import ssl

    from steerlm.client.settings import ClientSettings
    from steerlm.transport.urls import Endpoint

__all__ = ["PemInput", "handshake_refusal", "make_ssl_context", "probe_context", "read_client_pair",
           "read_root_certificates", "tls_refusal"]

PemInput = str | bytes | os.PathLike[str] | None


def _read_pem(value: PemInput, what: str, *, secret: bool = False) -> bytes | None:
    """PEM bytes from `value`: PEM text/bytes as given, or the contents of the file it names."""
    if value is None:
        return None
    if isinstance(value, bytes):
        pem = value
    elif isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if text.lstrip().startswith("-----BEGIN"):
            pem = text.encode("ascii", "replace")
        else:
            shown = "the given path" if secret and len(text) > 200 else repr(text)
            try:
                pem = Path(text).read_bytes()
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or "not a readable file"
                raise ConfigurationError(f"{what}: cannot read {shown} ({why}); pass a PEM file path or "
                                         "PEM text") from None
    else:
        raise ConfigurationError(f"{what} must be a PEM file path or PEM text/bytes, got {type(value).__name__}")
    if b"-----BEGIN" not in pem:
        raise ConfigurationError(f"{what} is not PEM (no '-----BEGIN' line); pass a PEM file path or PEM text")
    return pem


def read_root_certificates(value: PemInput) -> bytes | None:
    """The CA bundle as PEM bytes, checked to hold at least one certificate (None: system CAs)."""
    pem = _read_pem(value, "root_certificates")
    if pem is not None:
        import ssl

        try:
            ssl.create_default_context(cadata=pem.decode("ascii"))
        except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"root_certificates holds no valid PEM certificate ({_reason(exc)}); "
                                     "pass the CA certificate(s) that signed the server's certificate") from None
    return pem


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or type(exc).__name__)


@contextlib.contextmanager
def _pem_files(certificate: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """The pair as two private temporary files (`SSLContext.load_cert_chain` reads files only)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="steerlm-tls-") as folder:
        paths = []
        for name, data in (("cert.pem", certificate), ("key.pem", key)):
            path = os.path.join(folder, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            paths.append(path)
        yield paths[0], paths[1]


def _load_pair(context: Any, certificate: bytes, key: bytes) -> None:
    with _pem_files(certificate, key) as (cert_path, key_path):
        context.load_cert_chain(cert_path, key_path, password=b"")  # an encrypted key fails; never a prompt


def read_client_pair(client_certificate: PemInput, client_key: PemInput) -> tuple[bytes | None, bytes | None]:
    """The client certificate and key for mutual TLS as PEM bytes, checked to belong together (or both None)."""
    certificate = _read_pem(client_certificate, "client_certificate")
    key = _read_pem(client_key, "client_key", secret=True)
    if (certificate is None) != (key is None):
        given, missing = ("client_certificate", "client_key") if key is None else ("client_key",
                                                                                  "client_certificate")
        raise ConfigurationError(f"{given} was given without {missing}; mutual TLS needs both (PEM file paths "
                                 "or PEM text)")
    if certificate is not None and key is not None:
        import ssl

        try:
            _load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), certificate, key)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigurationError(f"client_certificate / client_key cannot be used together ({_reason(exc)}): "
                                     "pass the PEM certificate and the unencrypted PEM private key that "
                                     "belongs to it") from None
    return certificate, key


def make_ssl_context(ssl_module: ModuleType, pem: bytes | None, verify: bool, certificate: bytes | None = None,
                     key: bytes | None = None) -> Any:
    """A client SSLContext from `ssl_module` (stdlib `ssl` or `gevent.ssl`) trusting `pem` if given and
    presenting the client `certificate` / `key` if given."""
    context = ssl_module.create_default_context(cadata=pem.decode("ascii") if pem else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl_module.CERT_NONE
    if certificate is not None and key is not None:
        _load_pair(context, certificate, key)
    return context


def handshake_refusal(host: str, port: int, context: ssl.SSLContext, *, timeout: float = 2.0) -> str | None:
    """Why a TLS server refuses this client right at the handshake, or None (accepted, or unreachable).

    With TLS 1.3 the client's side of the handshake completes before the server checks the client
    certificate; Triton (and Python's own servers) then just close the connection, and grpc, aiohttp and
    geventhttpclient report a closed socket, exactly like an outage. This probe — made only after a TLS
    connection failed — handshakes and reads once: an alert, or an end of stream before any byte (an
    HTTP/2 server greets with its SETTINGS, an HTTP/1.1 one waits for the request), means refused.
    """
    import socket
    import ssl

    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(
                raw, server_hostname=host) as tls:
            tls.settimeout(timeout)
            if tls.recv(1):
                return None
            return "the server closed the connection right after the TLS handshake, before any request"
    except ssl.SSLError as exc:
        return str(exc)
    except (ConnectionResetError, BrokenPipeError):
        return "the server reset the connection right after the TLS handshake, before any request"
    except OSError:  # refused, unreachable, or a timeout: the server waits for our request (accepted)
        return None


def probe_context(options: ClientSettings, alpn: str, *, tls12: bool = False) -> ssl.SSLContext:
    """A stdlib context with the client's TLS material for `handshake_refusal` (TLS 1.2 at most when
    `tls12`: then the server checks the client certificate inside the handshake and names its reason)."""
    import ssl

    context: ssl.SSLContext = make_ssl_context(ssl, options.root_certificates, options.verify_ssl,
                                               options.client_certificate, options.client_key)
    context.set_alpn_protocols([alpn])
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_refusal(exc: SteerLMError, endpoint: Endpoint, options: ClientSettings) -> SteerLMError:
    """`exc`, or a ConfigurationError when the TLS server behind it refuses this client's certificate
    (see `handshake_refusal`). Blocking; the readiness wait calls it when a probe could not connect."""
    if not endpoint.ssl or not isinstance(exc, ServerUnavailableError) or isinstance(exc, RequestTimeoutError):
        return exc
    from urllib.parse import urlsplit

    parts = urlsplit(f"//{endpoint.address}")
    if parts.hostname is None or parts.port is None:
        return exc
    alpn = "h2" if endpoint.protocol == "grpc" else "http/1.1"
    reason = handshake_refusal(parts.hostname, parts.port, probe_context(options, alpn))
    if reason is None:
        return exc
    detail = handshake_refusal(parts.hostname, parts.port, probe_context(options, alpn, tls12=True))
    if detail is not None and "alert" in detail.lower():
        reason = f"{reason} ({detail})"
    given = "the client certificate given" if options.client_certificate else "no client certificate"
    refused = ConfigurationError(
        f"the TLS server at {endpoint.url} refused this client (model {exc.model!r}) with {given}: {reason}. "
        "It requires a client certificate it trusts: pass client_certificate= and client_key= (PEM file "
        "paths or PEM text), signed by the CA the server trusts and not expired"
    )
    refused.__cause__ = exc
    return refused
