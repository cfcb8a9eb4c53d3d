"""TLS for tests: a throwaway PKI made on the spot, and a TLS-terminating proxy that can require client
certificates (mutual TLS) in front of a plain local server.

    pki = make_pki(tmp_path)                      # CA, server/client certificates, the bad cases
    with TlsProxy({"http": 8000, "grpc": 8001}, pki.server, client_ca=pki.ca.cert) as proxy:
        SteerLMClient(model, f"https://127.0.0.1:{proxy.ports['http']}", root_certificates=pki.ca.cert,
                      client_certificate=pki.client.cert, client_key=pki.client.key)

The proxy negotiates ``h2`` (ALPN) for gRPC and ``http/1.1`` for HTTP, runs on its own event-loop thread
and stops with the ``with`` block. Triton's own gRPC TLS is ``steerlm serve --grpc-tls-cert/-key
[--grpc-tls-client-ca]``; Triton's HTTP endpoint has no TLS, hence the proxy for ``https://``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Credential", "Pki", "TlsProxy", "make_pki"]

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """`ca` signs `server` (127.0.0.1 and localhost), `client`, `expired_server`, `expired_client` and
    `localhost_only` (names localhost only: a hostname mismatch for 127.0.0.1); `other_ca` signs
    `stranger` (a client certificate no server here trusts)."""

    ca: Credential
    other_ca: Credential
    server: Credential
    client: Credential
    expired_server: Credential
    expired_client: Credential
    localhost_only: Credential
    stranger: Credential


def _write(folder: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> Credential:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Credential(cert_path, key_path)


Issuer = tuple[x509.Name, ec.EllipticCurvePrivateKey]


def _certificate(name: str, key: ec.EllipticCurvePrivateKey, issuer: Issuer | None, *, ca: bool = False,
                 hosts: tuple[str, ...] = (), client: bool = False, expired: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - 10 * _DAY, now - _DAY) if expired else (now - _DAY, now + 2 * _DAY)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer if issuer is not None else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                      key_encipherment=False, data_encipherment=False,
                                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_pki(folder: Path) -> Pki:
    """Make the CA, the other CA and their certificates (EC P-256) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Credential] = {}
    authorities: dict[str, tuple[x509.Name, ec.EllipticCurvePrivateKey]] = {}
    for name in ("ca", "other_ca"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"steerlm test {name}", key, None, ca=True)
        authorities[name] = (cert.subject, key)
        made[name] = _write(folder, name, key, cert)
    plan = {
        "server": ("ca", {"hosts": ("127.0.0.1", "localhost")}),
        "client": ("ca", {"client": True}),
        "expired_server": ("ca", {"hosts": ("127.0.0.1", "localhost"), "expired": True}),
        "expired_client": ("ca", {"client": True, "expired": True}),
        "localhost_only": ("ca", {"hosts": ("localhost",)}),
        "stranger": ("other_ca", {"client": True}),
    }
    for name, (authority, options) in plan.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"steerlm test {name}", key, authorities[authority], **options)  # type: ignore[arg-type]
        made[name] = _write(folder, name, key, cert)
    return Pki(**made)


class TlsProxy:
    """TLS termination on 127.0.0.1 in front of `targets` (name -> plain port); see the module docstring.

    `ports` maps each name to the proxy's TLS port. With `client_ca`, a client must present a certificate
    signed by it (the handshake fails otherwise).
    """

    def __init__(self, targets: Mapping[str, int], server: Credential, *, client_ca: Path | None = None) -> None:
        self.targets, self.server, self.client_ca = dict(targets), server, client_ca
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steerlm-tls-proxy", daemon=True)

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the TLS proxy did not start")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and end the proxy's thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._thread.join(10)

    def _context(self, alpn: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server.cert, self.server.key)
        context.set_alpn_protocols([alpn])
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.client_ca))
        return context

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()

    async def _start(self) -> None:
        for name, port in self.targets.items():
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = port) -> None:
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    writer.close()
                    return
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

            server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                                ssl=self._context("h2" if name == "grpc" else "http/1.1"))
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        self._loop.call_soon(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        with contextlib.suppress(RuntimeError):
            self._loop.run_forever()
        self._loop.close()
