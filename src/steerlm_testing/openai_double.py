"""A small OpenAI-compatible test double: what ``transformers serve`` does not do, on loopback.

`OpenAIDouble` serves the scripted test model behind the ``/v1`` API of vLLM (``flavour="vllm"``) or of
NeMo's Ray Serve deployable (``flavour="nemo-ray"``); what each answers is `steerlm_testing.openai_answers`.
Around that, for tests:

* ``GET /v1/models`` lists `model`; ``api_key=`` makes every request need ``Authorization: Bearer <key>``
  (else 401, OpenAI's ``invalid_api_key`` error);
* ``lists=False`` refuses a list prompt with 400 "prompt must be a string." (as transformers serve does);
* ``formats=False`` refuses ``response_format`` with 422 "Unexpected fields in the request" (transformers serve);
* ``max_model_len`` (scripted tokens) bounds prompt + ``max_tokens`` (vLLM's 400 context-length error);
* `fail_next(count, status, retry_after=...)` answers the next requests with that status (429 with a
  ``Retry-After`` header, 503, ...);
* `requests` records every request: method, path, JSON body, and whether it carried the right key;
* guided decoding (``response_format``, ``structured_outputs``, ``guided_json``) is honoured for any schema.

``with OpenAIDouble() as double: double.url`` → ``openai+http://127.0.0.1:<port>/v1``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from steerlm_testing.directives import tokenize
from steerlm_testing.openai_answers import (
    Refusal,
    context_refusal,
    error_body,
    guided_schema,
    ray_answer,
    vllm_answer,
    vllm_choice,
    vllm_stream,
)
from steerlm_testing.scripted import ScriptedBackend

__all__ = ["OpenAIDouble", "Recorded"]

Flavour = Literal["vllm", "nemo-ray"]


@dataclass(frozen=True)
class Recorded:
    """One request as the double received it."""

    method: str
    path: str
    body: Any = None
    authorized: bool = True
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers; a stream closes its connection

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in events:
            self.wfile.write(event.encode("utf-8"))
            self.wfile.flush()

    def _record(self, body: Any) -> bool:
        double = self.server.double
        authorized = double.api_key is None or self.headers.get("Authorization") == f"Bearer {double.api_key}"
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"}
        double.record(Recorded(self.command, self.path, body, authorized, headers))
        return authorized

    def do_GET(self) -> None:
        double = self.server.double
        if not self._record(None):
            self._reply(401, double.unauthorized())
        elif self.path == f"{double.base}/models":
            self._reply(200, {"object": "list", "data": [{"id": double.model, "object": "model", "created": 0,
                                                          "owned_by": "steerlm-testing"}]})
        else:
            self._reply(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        double = self.server.double
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        route = f"{double.base}/completions" + ("/" if double.flavour == "nemo-ray" else "")
        if not self._record(body):
            self._reply(401, double.unauthorized())
            return
        if self.path != route:
            if self.path + "/" == route:  # FastAPI's redirect_slashes
                self._reply(307, None, {"Location": f"http://{double.address}{route}"})
            else:
                self._reply(404, {"detail": "Not Found"})
            return
        fault = double.take_fault()
        if fault is not None:
            status, retry_after = fault
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            self._reply(status, error_body(f"injected fault {status}", "ServiceUnavailableError", status), extra)
            return
        try:
            self._complete(double, body)
        except Refusal as refusal:
            self._reply(refusal.status, refusal.body)
        except Exception as exc:  # the scripted model's [[raise=...]]: the server's own failure
            self._reply(500, error_body(str(exc), "InternalServerError", 500))

    def _complete(self, double: OpenAIDouble, body: Any) -> None:
        if not isinstance(body, dict):
            raise Refusal(400, error_body("the body must be a JSON object", "BadRequestError", 400))
        if double.flavour == "nemo-ray":
            self._reply(200, ray_answer(double.backend, double.model, body))
            return
        if body.get("model") != double.model:
            raise Refusal(404, error_body(f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404,
                                          "model"))
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts) or not prompts:
            raise Refusal(400, error_body("prompt must be a string or a list of strings", "BadRequestError", 400))
        if "response_format" in body and not double.formats:
            raise Refusal(422, {"detail": "Unexpected fields in the request: {'response_format'}"})
        if not isinstance(prompt, str) and not double.lists:
            raise Refusal(400, {"detail": "prompt must be a string."})
        max_tokens = int(body.get("max_tokens") or 16)
        stop = body.get("stop") or []
        stops = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        for p in prompts:
            refusal = context_refusal(len(tokenize(p)), max_tokens, double.max_model_len)
            if refusal is not None:
                raise refusal
        schema = guided_schema(body)
        choices = [vllm_choice(double.backend, p, max_tokens, stops, schema) for p in prompts]
        logprobs = None if body.get("logprobs") is None else int(body["logprobs"])
        if body.get("stream"):
            if len(choices) != 1:
                raise Refusal(400, error_body("the double streams one prompt at a time", "BadRequestError", 400))
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._events(vllm_stream(double.model, choices[0], usage, logprobs))
        else:
            self._reply(200, vllm_answer(double.model, choices, logprobs))


class _Server(ThreadingHTTPServer):
    """Tracks its open connections, so that stopping it closes keep-alive connections too (as a real
    server going away does; otherwise their handler threads would go on answering)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], double: OpenAIDouble) -> None:
        super().__init__(address, _Handler)
        self.double = double
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self._open_lock:
            self._open.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that went away is not worth a traceback
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class OpenAIDouble:
    """The double, served from a background thread on loopback and a free (or given) port."""

    def __init__(self, *, model: str = "steerlm-double", flavour: Flavour = "vllm", host: str = "127.0.0.1",
                 port: int = 0, api_key: str | None = None, lists: bool = True, max_model_len: int = 4096,
                 formats: bool = True) -> None:
        self.model = model
        self.flavour = flavour
        self.host = host
        self.port = port
        self.api_key = api_key
        self.lists = lists
        self.formats = formats
        self.max_model_len = max_model_len
        self.base = "/v1"
        self.backend = ScriptedBackend()
        self.requests: list[Recorded] = []
        self._faults: list[tuple[int, float | None]] = []
        self._state = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The steerlm URL: ``openai+http://host:port/v1``."""
        return f"openai+http://{self.address}{self.base}"

    def completions(self) -> list[Recorded]:
        """The completion requests received so far (readiness probes left out)."""
        with self._state:
            return [r for r in self.requests if r.method == "POST"]

    def record(self, entry: Recorded) -> None:
        with self._state:
            self.requests.append(entry)

    def unauthorized(self) -> dict[str, Any]:
        return error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    def fail_next(self, count: int, status: int = 503, *, retry_after: float | None = None) -> None:
        """Answer the next `count` completion requests with HTTP `status` (and a Retry-After header)."""
        with self._state:
            self._faults.extend([(status, retry_after)] * count)

    def take_fault(self) -> tuple[int, float | None] | None:
        with self._state:
            return self._faults.pop(0) if self._faults else None

    def start(self) -> OpenAIDouble:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = int(self._server.server_address[1])
            self._thread = threading.Thread(target=self._server.serve_forever, name="openai-double", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIDouble:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
