"""Transport-level value types and the connection protocols shared by gRPC and HTTP, sync and async.

A connection sends named numpy arrays to one server and returns named arrays (or, for decoupled
models, an iterator of `StreamEvent`s). Every failure leaves a connection as a `SteerLMError`
produced by `errors.classify` through `mapped_errors` — the one mapping point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from steerlm.errors import SteerLMError, classify

__all__ = [
    "AsyncConnection",
    "Connection",
    "ConnectionOptions",
    "FixedInputs",
    "ModelSpec",
    "StreamEvent",
    "TensorSpec",
    "WireRequest",
    "mapped_errors",
    "spec_from_config",
]


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

    arrays: Mapping[str, np.ndarray]
    outputs: tuple[str, ...]
    prebuilt: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WireRequest:
    """One inference request: the prompt-dependent arrays plus a shared `FixedInputs` block."""

    model: str
    inputs: Mapping[str, np.ndarray]
    fixed: FixedInputs


@dataclass(frozen=True)
class StreamEvent:
    """One response of a decoupled stream. `outputs` is empty for PyTriton's empty final response."""

    outputs: Mapping[str, np.ndarray]
    final: bool


@dataclass(frozen=True)
class ConnectionOptions:
    """Client-side settings every connection honours."""

    timeout: float = 60.0
    headers: Mapping[str, str] = field(default_factory=dict)
    root_certificates: str | bytes | None = None
    verify_ssl: bool = True


@contextmanager
def mapped_errors(model: str | None) -> Iterator[None]:
    """Re-raise any non-steerlm exception as `classify(exc)`, keeping it as `__cause__`.

    Works around `await` too (a plain context manager suffices inside coroutines).
    """
    try:
        yield
    except SteerLMError:
        raise
    except Exception as exc:
        raise classify(exc, model=model) from exc


class Connection(Protocol):
    """A blocking connection to one server (one URL)."""

    def model_ready(self, model: str) -> bool: ...

    def model_config(self, model: str) -> Mapping[str, Any]: ...

    def model_index(self) -> list[str] | None: ...

    def infer(self, request: WireRequest) -> dict[str, np.ndarray]: ...

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Iterator[StreamEvent]: ...

    def close(self) -> None: ...


class AsyncConnection(Protocol):
    """An asyncio connection to one server (one URL)."""

    async def model_ready(self, model: str) -> bool: ...

    async def model_config(self, model: str) -> Mapping[str, Any]: ...

    async def model_index(self) -> list[str] | None: ...

    async def infer(self, request: WireRequest) -> dict[str, np.ndarray]: ...

    def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> AsyncIterator[StreamEvent]: ...

    async def close(self) -> None: ...
