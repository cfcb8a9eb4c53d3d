"""Steering attributes: the per-model sets, validation, and the `<extra_id_2>` label line.

Three sets come from the seed cards:

* ``HELPSTEER`` — Llama2-70B-SteerLM-Chat and Llama2-13B-SteerLM-RM: 9 attributes, integers 0–4.
* ``OASST`` — SteerLM Llama-2 13B: 7 attributes, integers 0–9 (the card's example uses 9 and 0).
* ``HELPSTEER2`` — Llama3-70B-SteerLM-Chat: 5 attributes, integers 0–4.

The label line lists every attribute of the set, in the set's order, as ``name:value`` pairs joined
by ``,`` with no spaces — e.g. ``quality:4,toxicity:0,...,verbosity:4``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steerlm.errors import ConfigurationError
from steerlm.suggest import did_you_mean

__all__ = [
    "HELPSTEER",
    "HELPSTEER2",
    "OASST",
    "AttributeSet",
    "encode_labels",
    "parse_labels",
]


@dataclass(frozen=True)
class AttributeSet:
    """An ordered set of integer steering attributes with one shared inclusive range."""

    name: str
    names: tuple[str, ...]
    low: int
    high: int

    def validate(self, values: Mapping[str, Any], *, model: str) -> dict[str, int]:
        """Check names and values; return them as plain ints. Raises ConfigurationError."""
        checked: dict[str, int] = {}
        for key, value in values.items():
            if key not in self.names:
                raise ConfigurationError(
                    f"unknown steering attribute {key!r} for model {model!r}{did_you_mean(key, self.names)}; "
                    f"its attributes are: {', '.join(self.names)}"
                )
            if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
                raise ConfigurationError(
                    f"steering attribute {key}={value!r} is invalid for model {model!r}: "
                    f"use an integer from {self.low} to {self.high}"
                )
            checked[key] = int(value)
        return checked

    def resolve(self, defaults: Mapping[str, int], *overrides: Mapping[str, Any] | None,
                model: str) -> dict[str, int]:
        """Defaults, then each override mapping in turn (None values ignored), in the set's order."""
        merged = dict(defaults)
        for override in overrides:
            if override:
                merged.update(self.validate({k: v for k, v in override.items() if v is not None},
                                            model=model))
        return {name: merged[name] for name in self.names}

    def encode(self, values: Mapping[str, int]) -> str:
        """The label line body, in this set's order (missing attributes are an error)."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ConfigurationError(f"label line for {self.name} lacks attribute(s) {missing}")
        return ",".join(f"{name}:{values[name]}" for name in self.names)


HELPSTEER = AttributeSet(
    name="HelpSteer",
    names=("quality", "toxicity", "humor", "creativity", "helpfulness", "correctness",
           "coherence", "complexity", "verbosity"),
    low=0,
    high=4,
)
OASST = AttributeSet(
    name="OASST",
    names=("quality", "toxicity", "humor", "creativity", "violence", "helpfulness", "not_appropriate"),
    low=0,
    high=9,
)
HELPSTEER2 = AttributeSet(
    name="HelpSteer2",
    names=("helpfulness", "correctness", "coherence", "complexity", "verbosity"),
    low=0,
    high=4,
)


def encode_labels(values: Mapping[str, int], attribute_set: AttributeSet) -> str:
    """Encode attribute values to a label line body, e.g. ``quality:4,toxicity:0,...``."""
    return attribute_set.encode(values)


def parse_labels(line: str) -> dict[str, int]:
    """Parse ``name:value,name:value`` (an optional ``<extra_id_2>`` prefix is ignored).

    Raises ConfigurationError on a malformed pair, a non-integer value or a repeated name.
    """
    if not isinstance(line, str):
        raise ConfigurationError(f"parse_labels takes a label line string such as 'quality:4,verbosity:2', "
                                 f"got {type(line).__name__}")
    body = line.strip().removeprefix("<extra_id_2>").strip()
    result: dict[str, int] = {}
    if not body:
        return result
    for pair in body.split(","):
        name, sep, raw = pair.partition(":")
        name, raw = name.strip(), raw.strip()
        if not sep or not name:
            raise ConfigurationError(f"malformed label pair {pair!r} in {line!r}; expected name:value")
        try:
            value = int(raw)
        except ValueError as exc:
            raise ConfigurationError(f"label {name!r} has a non-integer value {raw!r} in {line!r}") from exc
        if name in result:
            raise ConfigurationError(f"label {name!r} appears twice in {line!r}")
        result[name] = value
    return result
