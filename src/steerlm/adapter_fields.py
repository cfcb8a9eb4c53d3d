"""What the adapters' pydantic models share beyond the steering fields: the credential / TLS fields and
constructor checking.

* `SecureFields` (a pydantic v2 mixin, like `steerlm.fields.SteeringFields`): ``headers``, ``api_key``,
  ``verify_ssl``, ``root_certificates``, ``client_certificate``, ``client_key``. ``api_key`` and
  ``client_key`` are `SecretStr`s excluded from serialization; credential headers (``authorization``,
  ``cookie``, ``x-api-key``, ``*-token`` …) are shown as ``'***'`` in ``repr()`` and in ``model_dump()``
  / LlamaIndex ``to_dict()``. `secure_client_options` validates them (once, at construction) into the
  client's keyword arguments.
* `check_keywords` refuses an unknown constructor keyword with a did-you-mean, and
  `configuration_error` turns pydantic's ValidationError into a `ConfigurationError` that names the
  field and what it expects (never a secret's value).

Framework-neutral: pydantic only.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_serializer

from steerlm.client.settings import DEFAULT_VERIFY_SSL
from steerlm.errors import ConfigurationError
from steerlm.secrets import auth_headers, redact_headers, secret_text
from steerlm.suggest import did_you_mean
from steerlm.transport.tls import read_client_pair, read_root_certificates

__all__ = ["ResolvedOnce", "SecureFields", "check_client_kwargs", "check_keywords", "configuration_error"]

_SECRET_FIELDS = frozenset({"api_key", "client_key", "headers"})


class ResolvedOnce(BaseModel):
    """An adapter whose fields are resolved and validated once: assigning a field drops the resolution, and
    a resolution made for another object (a copy carries its original's, whose ``owner`` is another id) is
    ignored, so the next call resolves again."""

    model_config = ConfigDict(defer_build=True)  # a mixin: the concrete model builds its own schema

    _resolved: Any = PrivateAttr(default=None)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._resolved = None  # a field changed: resolve the fields again on the next call

    def cached_resolution(self) -> Any:
        """This object's resolution (with an ``owner`` attribute), or None when it must be resolved again."""
        # Read from pydantic's private dict: `self._resolved` goes through BaseModel.__getattr__ (~3 µs).
        resolved = self.__pydantic_private__.get("_resolved")  # type: ignore[union-attr]
        return resolved if resolved is not None and resolved.owner == id(self) else None


class SecureFields(BaseModel):
    """Credential and TLS fields; secrets never appear in repr or serialization."""

    model_config = ConfigDict(defer_build=True)  # a mixin: the concrete model builds its own schema

    headers: dict[str, str] | None = Field(
        default=None, description="Extra HTTP headers / gRPC metadata (credential headers are shown as '***').")
    api_key: SecretStr | None = Field(
        default=None, exclude=True,
        description="Sent as `authorization: Bearer <key>` (Triton itself has no auth; for proxies).")
    verify_ssl: bool = Field(default=DEFAULT_VERIFY_SSL, description="Verify the server's TLS certificate (https://).")
    root_certificates: str | None = Field(
        default=None, description="CA certificate(s) for TLS: a PEM file path or PEM text.")
    client_certificate: str | None = Field(
        default=None, description="Client certificate for mutual TLS: a PEM file path or PEM text.")
    client_key: SecretStr | None = Field(
        default=None, exclude=True, description="Private key of client_certificate: a PEM file path or PEM text.")

    @field_serializer("headers")
    def _redacted_headers(self, value: dict[str, str] | None) -> dict[str, Any] | None:
        return redact_headers(value)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_headers(value) if name == "headers" else value

    def check_secure_fields(self) -> None:
        """Validate headers, api_key and the TLS files/PEM once, at construction (ConfigurationError)."""
        self.secure_client_options()
        read_root_certificates(self.root_certificates)
        read_client_pair(self.client_certificate, secret_text(self.client_key, what="client_key"))

    def secure_client_options(self) -> dict[str, Any]:
        """The client keyword arguments of these fields (headers checked; the TLS material is read by the
        client)."""
        key = secret_text(self.client_key, what="client_key")
        return {"headers": auth_headers(self.headers, self.api_key) or None, "verify_ssl": self.verify_ssl,
                "root_certificates": self.root_certificates, "client_certificate": self.client_certificate,
                "client_key": key}


def check_keywords(owner: type[BaseModel], data: Mapping[str, Any], *, also: Iterable[str] = ()) -> None:
    """ConfigurationError for a keyword that is neither a field nor an alias of `owner`."""
    fields = owner.model_fields
    known = {*fields, *(f.alias for f in fields.values() if f.alias), *also}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        public = sorted(k for k in known if not k.startswith("_"))
        hints = "".join(did_you_mean(k, public) for k in unknown)
        raise ConfigurationError(
            f"{owner.__name__}() got unknown argument(s) {unknown}{hints}; see the class docstring for the "
            "fields (steering attributes, sampling parameters, client settings)"
        )


def configuration_error(owner: str, exc: ValidationError) -> ConfigurationError:
    """The ConfigurationError for a pydantic ValidationError: field, expectation, the value unless secret."""
    parts: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "(arguments)"
        if name in parts:
            continue
        value = error.get("input")
        shown = type(value).__name__ if name in _SECRET_FIELDS else repr(value)[:80]
        parts[name] = f"{name}: {error['msg']} (got {shown})"
    return ConfigurationError(f"invalid {owner}() argument(s): {'; '.join(parts.values())}")


def check_client_kwargs(kwargs: Mapping[str, Any], *, taken: Iterable[str]) -> None:
    """ConfigurationError unless every key of `client_kwargs` is a client option the adapter does not set."""
    from steerlm.client.settings import ClientSettings

    accepted = [n for n in inspect.signature(ClientSettings.__init__).parameters if n not in {"self", *taken}]
    if not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"client_kwargs must be a dict, got {type(kwargs).__name__}")
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        hints = "".join(did_you_mean(k, accepted) for k in unknown)
        raise ConfigurationError(f"client_kwargs: unknown client option(s) {unknown}{hints}; accepted: "
                                 f"{', '.join(accepted)} (the other settings are fields of their own)")
