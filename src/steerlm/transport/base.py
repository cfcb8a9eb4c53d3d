"""Transport-level value types and the connection protocols shared by gRPC and HTTP, sync and async.

A connection sends named numpy arrays to one server and returns named arrays (or, for decoupled
models, an iterator of `StreamEvent`s). Every failure leaves a connection as a `SteerLMError`
produced by `errors.classify` through `mapped_errors` — the one mapping point.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from steerlm.errors import RequestTimeoutError, SteerLMError, classify, is_transport_error

__all__ = [
    "Array",
    "AsyncConnection",
    "Connection",
    "FixedInputs",
    "ModelSpec",
    "StreamEvent",
    "TensorSpec",
    "WireRequest",
    "mapped_errors",
    "silent_stream",
    "spec_from_config",
]


if TYPE_CHECKING:
    import numpy.typing as npt

    Array = npt.NDArray[Any]
else:  # the same at run time, without importing numpy.typing (a sixth of this package's import time)
    Array = np.ndarray
"""Any numpy array (what codecs and connections exchange)."""


@dataclass(frozen=True)
class TensorSpec:
    """One declared input or output: Triton datatype (`INT64`, `BYTES`, …), dims without batch."""

    name: str
    datatype: str
    dims: tuple[int, ...]
    optional: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """What the server declares for a model, read once from its config."""

    name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    max_batch_size: int
    decoupled: bool

    def describe(self) -> str:
        """A one-line summary for error messages: inputs and outputs with dtypes."""
        ins = ", ".join(f"{t.name}:{t.datatype}" for t in self.inputs.values())
        outs = ", ".join(f"{t.name}:{t.datatype}" for t in self.outputs.values())
        return f"inputs [{ins}], outputs [{outs}]"


def _datatype(value: object) -> str:
    text = str(value).removeprefix("TYPE_")
    return "BYTES" if text == "STRING" else text


def _tensors(entries: object, *, inputs: bool) -> dict[str, TensorSpec]:
    out: dict[str, TensorSpec] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or "name" not in entry:
            continue
        dims = tuple(int(d) for d in entry.get("dims", entry.get("shape", [])))
        out[str(entry["name"])] = TensorSpec(
            name=str(entry["name"]),
            datatype=_datatype(entry.get("data_type", entry.get("datatype", ""))),
            dims=dims,
            optional=bool(entry.get("optional", False)) if inputs else True,
        )
    return out


def spec_from_config(config: Mapping[str, Any], model: str) -> ModelSpec:
    """Build a ModelSpec from a Triton model config (HTTP JSON, or gRPC `as_json` with `config`)."""
    cfg = config.get("config", config)
    if not isinstance(cfg, Mapping):
        cfg = {}
    policy = cfg.get("model_transaction_policy") or {}
    return ModelSpec(
        name=str(cfg.get("name") or model),
        inputs=_tensors(cfg.get("input"), inputs=True),
        outputs=_tensors(cfg.get("output"), inputs=False),
        max_batch_size=int(cfg.get("max_batch_size") or 0),
        decoupled=bool(policy.get("decoupled", False)) if isinstance(policy, Mapping) else False,
    )


@dataclass
class FixedInputs:
    """The per-parameter-set arrays of a request (identical for every call with the same params).

    Connections keep their prebuilt tritonclient objects for them in `prebuilt[protocol]`, so a
    repeated call converts only the prompt tensor.
    """

    arrays: Mapping[str, Array]
    outputs: tuple[str, ...]
    prebuilt: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WireRequest:
    """One inference request: the prompt-dependent arrays plus a shared `FixedInputs` block.

    `timeout` and `headers` are the request's own (per-call options); None means the connection's
    (the client settings'). `headers`, when set, is the complete set to send.
    """

    model: str
    inputs: Mapping[str, Array]
    fixed: FixedInputs
    timeout: float | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class StreamEvent:
    """One response of a decoupled stream. `outputs` is empty for PyTriton's empty final response."""

    outputs: Mapping[str, Array]
    final: bool


class _MappedErrors:
    """Re-raise a transport exception as `classify(exc)`, keeping it as `__cause__`; any other exception
    (a bug: KeyError, AttributeError, ...) propagates unchanged.

    A plain (class-based, so cheap) context manager: it works around `await` inside coroutines too.
    Stateless but for the model name, so `mapped_errors` hands out one instance per model.
    """

    __slots__ = ("_model",)

    def __init__(self, model: str | None) -> None:
        self._model = model

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        if exc is None or isinstance(exc, SteerLMError) or not isinstance(exc, Exception):
            return False
        if not is_transport_error(exc):
            return False
        raise classify(exc, model=self._model) from exc


@lru_cache(maxsize=256)
def mapped_errors(model: str | None) -> _MappedErrors:
    """The context manager that maps transport errors raised inside it for `model` (see `_MappedErrors`)."""
    return _MappedErrors(model)


def silent_stream(model: str, timeout: float | None) -> RequestTimeoutError:
    """The error for a stream that sent nothing for `timeout` seconds (the inactivity timeout)."""
    return RequestTimeoutError(
        f"stream from model {model!r} sent nothing for {timeout or 0.0:g} s; raise `stream_timeout=`", model=model,
    )


class Connection(Protocol):
    """A blocking connection to one server (one URL).

    `model_ready` probes readiness; `model_config` reads the model's config (Triton JSON);
    `model_index` lists the server's models with their states (``{"name": "READY", ...}``; None when
    the server cannot list them); `infer` sends one request; `stream` one decoupled request. Failures
    are raised as `SteerLMError`s (through `mapped_errors`).
    """

    def model_ready(self, model: str) -> bool: ...

    def model_config(self, model: str) -> Mapping[str, Any]: ...

    def model_index(self) -> dict[str, str] | None: ...

    def infer(self, request: WireRequest) -> dict[str, Array]: ...

    def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> Generator[StreamEvent, None, None]: ...

    def close(self) -> None: ...


class AsyncConnection(Protocol):
    """An asyncio connection to one server (one URL); the methods of `Connection`, awaitable."""

    async def model_ready(self, model: str) -> bool: ...

    async def model_config(self, model: str) -> Mapping[str, Any]: ...

    async def model_index(self) -> dict[str, str] | None: ...

    async def infer(self, request: WireRequest) -> dict[str, Array]: ...

    def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]: ...

    async def close(self) -> None: ...
