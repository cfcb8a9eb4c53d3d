"""The adapters' per-call path to their `ClientSettings`: built once per set of field values.

`SettingsMemo` (one per adapter object) compares the fields by identity — a few `is` checks per call —
and `cached_settings` (process-wide, bounded) returns the same validated settings for equal values, so
equal adapters share one cache key and so one client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from steerlm.client.settings import ClientSettings
from steerlm.profiles import ModelProfile

__all__ = ["SettingsMemo", "cached_settings"]


class SettingsMemo:
    """The last settings an adapter built, and the field values they were built from, compared by
    identity: the per-call fast path (a few `is` checks) when the fields did not change. A copy starts
    empty. Thread-safe (one tuple swapped atomically)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[tuple[Any, ...], ClientSettings] | None = None

    def get(self, values: tuple[Any, ...], build: Callable[[], ClientSettings]) -> ClientSettings:
        last = self._last
        if last is not None and len(last[0]) == len(values):
            for old, new in zip(last[0], values, strict=True):
                if old is not new:
                    break
            else:
                return last[1]
        settings = build()
        self._last = (values, settings)
        return settings

    def __deepcopy__(self, memo: dict[int, Any]) -> SettingsMemo:
        return SettingsMemo()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return SettingsMemo, ()


_MEMO: dict[tuple[Any, ...], ClientSettings] = {}
_MEMO_SIZE = 256


def _hashable(value: Any) -> Any:
    if isinstance(value, ModelProfile):
        return ("profile", value.name, id(value))
    if hasattr(value, "get_secret_value"):
        return ("secret", value.get_secret_value())
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


def cached_settings(model: str, url: Any = None, **options: Any) -> ClientSettings:
    """`ClientSettings.build(model, url, **options)`, memoized on the values (the adapters call it per
    request: equal values return the same, already validated settings)."""
    key = (model, _hashable(url), *sorted((k, _hashable(v)) for k, v in options.items() if v is not None))
    try:
        found = _MEMO.get(key)
    except TypeError:  # an unhashable option value: validate without the memo
        return ClientSettings.build(model, url, **{k: v for k, v in options.items() if v is not None})
    if found is None:
        found = ClientSettings.build(model, url, **{k: v for k, v in options.items() if v is not None})
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()
        _MEMO[key] = found
    return found
