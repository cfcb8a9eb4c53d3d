"""What the blocking and the asyncio OpenAI-compatible connections share: the endpoint's routes, headers
and TLS context, what was learned about the server, and the decisions taken on its answers. No I/O.

Learned once per connection:

* **the completions route**: ``<base>/completions``, or ``<base>/completions/`` for NeMo's Ray Serve
  deployables, which declare only the trailing-slash route (a FastAPI server redirects the other with
  307; a server that does not answers 404 ``Not Found``). Either answer switches the route for good;
* **whether the server takes a list of prompts**: the first batch goes as one list; a refusal
  (`steerlm.transport.openai.wire.list_refused`) or an answer with another number of choices
  switches to one request per prompt, sent concurrently, for good;
* **whether it takes ``response_format``** (guided decoding): a refusal of the field
  (`steerlm.transport.openai.wire.format_refused`, e.g. transformers serve's 422) sends the request again
  without it, and none from then on (the prompted protocol is then the fallback).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from steerlm.errors import InvalidRequestError
from steerlm.transport.base import Array
from steerlm.transport.openai.codec import OPENAI_CONFIG
from steerlm.transport.openai.wire import (
    OpenAIStatusError,
    RequestParts,
    error_message,
    format_refused,
    list_refused,
    read_answer,
)
from steerlm.transport.tls import make_ssl_context
from steerlm.transport.urls import Endpoint

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["Target", "merge_outputs"]

_REDIRECTS = {301, 302, 303, 307, 308}
logger = logging.getLogger("steerlm.client")


def merge_outputs(parts: Sequence[Mapping[str, Array]]) -> dict[str, Array]:
    """The outputs of single-prompt answers stacked into one batch, in order."""
    return {name: np.concatenate([p[name] for p in parts], axis=0) for name in parts[0]}


class Target:
    """One OpenAI-compatible server: URLs, headers, TLS, and the route / list-support it was found to have."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.endpoint = endpoint
        parts = urlsplit(f"http://{endpoint.address}")
        self.host = parts.hostname or ""
        self.port = int(parts.port or (443 if endpoint.ssl else 80))
        self.base = parts.path.rstrip("/")
        self.origin = f"{'https' if endpoint.ssl else 'http'}://{endpoint.address.split('/', 1)[0]}"
        self.completions = f"{self.base}/completions"
        self.models = f"{self.base}/models"
        self.timeout = options.timeout
        self.probe_timeout = options.probe_timeout
        self.headers = {**dict(options.headers), "Content-Type": "application/json"}
        self.authorized = any(name.lower() == "authorization" for name in options.headers)  # a key of its own
        self.stream_headers = {**self.headers, "Accept": "text/event-stream"}
        self.ssl_context: ssl.SSLContext | None = make_ssl_context(
            ssl, options.root_certificates, options.verify_ssl, options.client_certificate, options.client_key,
        ) if endpoint.ssl else None
        self.lists: bool | None = None  # None: not known yet
        self.formats = True  # False once the server refused `response_format`

    def refuses_format(self, status: int, raw: bytes, parts: RequestParts) -> bool:
        """Whether this answer refused the request's ``response_format`` (then, and from then on, it is left
        out: send the request again)."""
        if not self.formats or "response_format" not in parts.fields or 200 <= status < 300:
            return False
        if not format_refused(status, error_message(raw)):
            return False
        self.formats = False
        logger.warning("%s refuses response_format (HTTP %d): guided decoding is not available there; structured "
                       "output falls back to the prompted JSON protocol", self.origin, status)
        return True

    def headers_for(self, parts: RequestParts) -> dict[str, str]:
        """The headers of one request: its own complete set (per-call options) or the connection's."""
        if parts.headers is None:
            return self.stream_headers if parts.stream else self.headers
        extra = {"Accept": "text/event-stream"} if parts.stream else {}
        return {**parts.headers, "Content-Type": "application/json", **extra}

    def config(self, model: str) -> dict[str, Any]:
        """The synthesised model config (`OPENAI_CONFIG`) under the served model's name."""
        return {**OPENAI_CONFIG, "name": model}

    def moved(self, status: int, headers: Any, raw: bytes) -> bool:
        """Whether an answer to a POST on the completions route says the route is ``…/completions/``
        (a redirect there, or a bare 404 ``Not Found``); if so the route is switched (try again)."""
        if self.completions.endswith("/"):
            return False
        slashed = self.completions + "/"
        location = urlsplit(str(headers.get("Location") or headers.get("location") or "")).path
        if (status in _REDIRECTS and location == slashed) or (
                status == 404 and error_message(raw).strip().lower() == "not found"):
            self.completions = slashed
            return True
        return False

    def check(self, status: int, headers: Any, raw: bytes, model: str) -> None:
        """Raise for an error answer (`OpenAIStatusError`, mapped by `classify`; a missing route is a
        configuration problem, said as such)."""
        if 200 <= status < 300:
            return
        message = error_message(raw)
        if status == 404 and message.strip().lower() == "not found":
            raise InvalidRequestError(
                f"{self.origin} has no OpenAI completions route at {self.base}/completions (HTTP 404). The URL's "
                "path is the API base: openai+http://HOST:PORT/v1 for vLLM, trtllm-serve, NIM and transformers "
                "serve", status=status, model=model,
            )
        raise OpenAIStatusError(status, message, headers)

    def single_answer(self, status: int, headers: Any, raw: bytes, model: str) -> dict[str, Array]:
        """The outputs of the answer to a one-prompt request (raises for an error answer)."""
        self.check(status, headers, raw, model)
        outputs = read_answer(raw, 1, model)
        if outputs is None:
            raise InvalidRequestError("the server answered one prompt with several choices", model=model)
        return outputs

    def list_answer(self, status: int, headers: Any, raw: bytes, rows: int, model: str) -> dict[str, Array] | None:
        """The outputs of the answer to a list of `rows` prompts, or None when the server does not take
        lists (then, and from then on, send one prompt per request). Raises for other error answers."""
        if self.lists is None and not 200 <= status < 300 and list_refused(status, error_message(raw)):
            self.lists = False
            return None
        self.check(status, headers, raw, model)
        outputs = read_answer(raw, rows, model)
        self.lists = outputs is not None
        return outputs
