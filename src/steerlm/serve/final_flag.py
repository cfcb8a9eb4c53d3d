"""Let a decoupled PyTriton model flag its LAST DATA response final, as TensorRT-LLM does.

PyTriton 0.7 always ends a decoupled stream with a separate, EMPTY response flagged
``TRITONSERVER_RESPONSE_COMPLETE_FINAL``: its inference handler sends every yielded response with no
flag and then ``(EOS, None)``. There is no public API for "this response is the last one". The proxy
inside the Python-backend stub, however, already forwards an EOS that carries data as one data response
with the final flag. So an infer function yields `FinalResponses` (a plain list subclass) as its last
item, and `install()` wraps `RequestsResponsesConnector.send` in the server process so that

* a `FinalResponses` payload is sent with the EOS flag (data + final flag in one response), and
* the empty EOS that PyTriton sends afterwards for the same requests is dropped.

Every other model is unaffected (its payloads are never `FinalResponses`). `install()` is idempotent
and returns False (leaving PyTriton untouched) when PyTriton's internals do not look as expected; a
`FinalResponses` then travels as an ordinary response followed by PyTriton's empty final one.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["FinalResponses", "install", "installed"]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"installed": False}


class FinalResponses(list[dict[str, Any]]):
    """The last responses of a decoupled infer call: sent with the final flag when `install()` ran."""


def installed() -> bool:
    return bool(_STATE["installed"])


def install() -> bool:
    """Patch PyTriton (0.7) once; True when data responses can now carry the final flag."""
    with _LOCK:
        if _STATE["installed"]:
            return True
        try:
            from pytriton.proxy.communication import PyTritonResponseFlags
            from pytriton.proxy.inference import RequestsResponsesConnector
        except ImportError:
            return False
        original = getattr(RequestsResponsesConnector, "send", None)
        if original is None or not hasattr(PyTritonResponseFlags, "EOS"):
            return False
        eos = PyTritonResponseFlags.EOS
        finished: set[bytes] = set()

        def send(self: Any, scope: Any, flags: Any, responses: Any) -> Any:
            key = scope["requests_id"]
            if key in finished:  # the stream is closed: drop PyTriton's trailing empty EOS
                if flags & eos:
                    finished.discard(key)
                return None
            if isinstance(responses, FinalResponses) and not flags:
                finished.add(key)
                return original(self, scope, eos, list(responses))
            return original(self, scope, flags, responses)

        RequestsResponsesConnector.send = send
        _STATE["installed"] = True
        return True
