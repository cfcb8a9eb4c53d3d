"""A test double of NeMo's legacy REST text-generation server (``megatron_gpt_eval.py server=True``).

It implements the documented protocol of ``nemo/collections/nlp/modules/common/text_generation_server.py``
(NeMo v1.17–v1.23; REFERENCE §3b) on loopback, with text from the scripted test model:

* ``PUT /generate`` with a JSON body; unknown keys are ignored; a global lock serialises generation;
* validation failures are a **bare JSON string with HTTP 200**, with NeMo's exact wording and order
  (e.g. ``"tokens_to_generate must be an integer greater than 0"``); more than 128 sentences is the only
  HTTP 400 (``"Maximum number of sentences is 128"``); a body without ``sentences`` is a 500;
* the answer ``{"sentences", "tokens", "logprob", "token_ids", "offsets"}`` holds **prompt + completion**;
  generation stops after an ``end_strings`` match (default ``["<|endoftext|>"]``) and the end string
  stays in the text; ``tokens_to_generate`` defaults to 64;
* ``drop_markers=True`` mimics detokenizers that drop ``<extra_id_N>`` from the returned text
  (prompt and completion);
* faults for tests: `fail_next(n, status)` answers the next n requests with that HTTP status.

``RestDouble`` runs it in a thread (``with RestDouble() as server: server.url``); ``python -m
steerlm_testing.rest_double --port 5555`` runs it in the foreground.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from steerlm.serve.backend import SamplingRequest
from steerlm_testing.directives import tokenize
from steerlm_testing.scripted import ScriptedBackend

__all__ = ["MAX_SENTENCES", "RestDouble", "validate"]

MAX_SENTENCES = 128
_MARKER = re.compile(r"<extra_id_\d+>")
_NUMBER = (int, float)


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER  # NeMo: type(x) == int or type(x) == float (so bool is refused)


# (key, check, message) in NeMo's order; a failed check returns the message as a JSON string, HTTP 200.
_CHECKS: tuple[tuple[str, Any, str], ...] = (
    ("tokens_to_generate", lambda v: isinstance(v, int) and v >= 1,
     "tokens_to_generate must be an integer greater than 0"),
    ("all_probs", lambda v: isinstance(v, bool), "all_probs must be a boolean value"),
    ("temperature", lambda v: _is_number(v) and 0.0 < v <= 100.0,
     "temperature must be a positive number less than or equal to 100.0"),
    ("add_BOS", lambda v: isinstance(v, bool), "add_BOS must be a boolean value"),
    ("greedy", lambda v: isinstance(v, bool), "greedy must be a boolean value"),
    ("top_k", lambda v: _is_number(v) and v >= 0, "top_k must be a positive integer number"),
    ("top_p", lambda v: _is_number(v) and 0.0 <= v <= 1.0,
     "top_p must be a positive number less than or equal to 1.0"),
    ("repetition_penalty", lambda v: _is_number(v) and v >= 1.0,
     "repetition_penalty must be a positive number no less than 1.0"),
    ("end_strings", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
     "expect end_strings to be a list of strings"),
    ("min_tokens_to_generate", lambda v: isinstance(v, int) and v >= 0,
     "min_tokens_to_generate must be an integer no less than 0"),
    ("compute_logprob", lambda v: isinstance(v, bool), "compute_logprob must be a boolean value"),
    ("random_seed", lambda v: v is None or (isinstance(v, int) and v >= 0),
     "random_seed must be a positive integer number or None"),
)


def validate(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """``(status, message)`` for a request NeMo refuses, else None."""
    sentences = body["sentences"]
    if len(sentences) > MAX_SENTENCES:
        return 400, f"Maximum number of sentences is {MAX_SENTENCES}"
    for key, check, message in _CHECKS:
        if key in body and not check(body[key]):
            return 200, message
    return None


def _generate(backend: ScriptedBackend, body: Mapping[str, Any], drop_markers: bool) -> dict[str, Any]:
    params = SamplingRequest(
        max_tokens=int(body.get("tokens_to_generate", 64)),
        top_k=int(body.get("top_k", 0)),
        top_p=float(body.get("top_p", 0.9)),
        temperature=float(body.get("temperature", 1.0)),
        seed=body.get("random_seed"),
        stop_words=tuple(body.get("end_strings", ["<|endoftext|>"])),
        extras={"greedy": bool(body.get("greedy", False)), "add_BOS": bool(body.get("add_BOS", False))},
    )
    prompts = [str(s) for s in body["sentences"]]
    completions = backend.generate(prompts, params)
    texts = [p + c for p, c in zip(prompts, completions, strict=True)]
    if drop_markers:
        texts = [_MARKER.sub("", t) for t in texts]
    tokens = [tokenize(t) for t in texts]
    offsets = [[sum(len(x) for x in toks[:i]) for i in range(len(toks))] for toks in tokens]
    return {
        "sentences": texts,
        "tokens": tokens,
        "logprob": None,
        "token_ids": [list(range(len(toks))) for toks in tokens],
        "offsets": offsets,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = (json.dumps(payload) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        if self.path.rstrip("/") != "/generate":
            self._reply(404, {"message": "The requested URL was not found on the server."})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        double = self.server.double
        try:
            body = json.loads(raw)
        except ValueError:
            self._reply(400, {"message": "Failed to decode JSON object"})
            return
        double.record(body)
        fault = double.take_fault()
        if fault is not None:
            self._reply(fault, {"message": f"injected fault {fault}"})
            return
        if not isinstance(body, dict) or "sentences" not in body:
            self._reply(500, {"message": "Internal Server Error"})
            return
        refused = validate(body)
        if refused is not None:
            self._reply(*refused)
            return
        with double.lock:
            try:
                answer = _generate(double.backend, body, double.drop_markers)
            except Exception:
                self._reply(500, {"message": "Internal Server Error"})
                return
        self._reply(200, answer)

    def do_POST(self) -> None:
        self._reply(405, {"message": "The method is not allowed for the requested URL."})

    do_GET = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], double: RestDouble) -> None:
        super().__init__(address, _Handler)
        self.double = double


class RestDouble:
    """The test double, served from a background thread on `host` (loopback) and a free or given port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, drop_markers: bool = False) -> None:
        self.host = host
        self.port = port
        self.drop_markers = drop_markers
        self.backend = ScriptedBackend()
        self.lock = threading.Lock()
        self.requests: list[Any] = []
        self._faults: list[int] = []
        self._state = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port`` (the REST transport also accepts ``nemo-rest://host:port``)."""
        return f"http://{self.address}"

    def record(self, body: Any) -> None:
        with self._state:
            self.requests.append(body)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with HTTP `status` (before validation)."""
        with self._state:
            self._faults.extend([status] * count)

    def take_fault(self) -> int | None:
        with self._state:
            return self._faults.pop(0) if self._faults else None

    def start(self) -> RestDouble:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = int(self._server.server_address[1])
            self._thread = threading.Thread(target=self._server.serve_forever, name="rest-double", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> RestDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="NeMo legacy REST server test double (PUT /generate)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5555)
    parser.add_argument("--drop-markers", action="store_true", help="drop <extra_id_N> from returned text")
    args = parser.parse_args(argv)
    double = RestDouble(host=args.host, port=args.port, drop_markers=args.drop_markers)
    server = _Server((double.host, double.port), double)
    print(f"NeMo REST test double on http://{double.host}:{server.server_address[1]}/generate", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
