"""`ParamInput`: how one `GenerationParams` field maps onto a signature's declared inputs (codec tables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["OnMissing", "ParamInput"]

OnMissing = Literal["warn", "error"]


@dataclass(frozen=True)
class ParamInput:
    """How one GenerationParams field maps onto the first declared input among `names`.

    `on_missing`: what happens when the caller sets the field but the model declares none of the
    names — "warn" (the client logs once and drops it) or "error" (ConfigurationError, because
    dropping it would change what the caller gets). `default` is sent only when the input is
    declared *required* and the caller left the field unset.
    """

    field: str
    names: tuple[str, ...]
    on_missing: OnMissing
    default: Any = None
