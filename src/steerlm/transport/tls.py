"""TLS material for the connections: root certificates (a path or PEM text) and SSL contexts."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from steerlm.errors import ConfigurationError

__all__ = ["make_ssl_context", "read_root_certificates"]


def read_root_certificates(value: str | bytes | os.PathLike[str] | None) -> bytes | None:
    """PEM bytes from `value`: PEM text/bytes as given, or the contents of the file it names."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    text = os.fspath(value)
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode("ascii")
    try:
        return Path(text).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"root_certificates: cannot read {text!r} ({exc.strerror}); pass a PEM file path or PEM text"
        ) from None


def make_ssl_context(ssl_module: ModuleType, pem: bytes | None, verify: bool) -> Any:
    """A client SSLContext from `ssl_module` (stdlib `ssl` or `gevent.ssl`) trusting `pem` if given."""
    context = ssl_module.create_default_context(cadata=pem.decode("ascii") if pem else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl_module.CERT_NONE
    return context
