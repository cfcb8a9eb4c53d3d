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
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from steerlm.errors import ConfigurationError

__all__ = ["PemInput", "make_ssl_context", "read_client_pair", "read_root_certificates"]

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
