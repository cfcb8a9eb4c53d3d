"""Per-call request options, shared by the framework adapters (framework-neutral).

An adapter holds defaults (its constructor fields) and receives per-call keyword arguments. Both are
*option layers*: mappings whose keys are generation parameters (`steerlm.params.PARAM_NAMES`), steering
attribute names (``verbosity=1`` …, the union of every attribute set) and ``attributes`` (a dict form).
`resolve_options` merges the layers — later layers win, ``None`` means "not set" — and validates the
result for one profile: unknown attribute names, out-of-range values and attributes on a profile that
takes none raise `ConfigurationError`, exactly as the core does.

Within one layer the per-attribute keys win over the ``attributes`` dict. ``stop`` in a later layer
replaces the earlier list (the profile's own stop strings are always added by the client).

`with_tool_instructions` offers tools (the `steerlm.tools` protocol) by appending the protocol's text to
the system turn: after the conversation's own system text, or after the profile's default system text
when the conversation has none (so a SteerLM model keeps its trained system prompt).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steerlm.attributes import HELPSTEER, HELPSTEER2, OASST
from steerlm.errors import ConfigurationError
from steerlm.params import PARAM_NAMES, GenerationParams
from steerlm.profiles import ModelProfile, get_profile
from steerlm.prompts import Message
from steerlm.tools import ToolSpec, tool_instructions

__all__ = [
    "ATTRIBUTE_NAMES",
    "OPTION_NAMES",
    "RequestOptions",
    "refine_options",
    "resolve_options",
    "split_options",
    "with_system_text",
    "with_tool_instructions",
]

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(dict.fromkeys((*HELPSTEER.names, *OASST.names, *HELPSTEER2.names)))
OPTION_NAMES: tuple[str, ...] = (*PARAM_NAMES, *ATTRIBUTE_NAMES, "attributes")
_OPTION_SET = frozenset(OPTION_NAMES)


@dataclass(frozen=True)
class RequestOptions:
    """The resolved options of one request: full attribute values (in label order) and parameters."""

    attributes: Mapping[str, int] = field(default_factory=dict)
    params: GenerationParams = field(default_factory=GenerationParams)


def split_options(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into ``(options, rest)``: `OPTION_NAMES` keys and everything else."""
    options = {k: v for k, v in kwargs.items() if k in _OPTION_SET}
    rest = {k: v for k, v in kwargs.items() if k not in _OPTION_SET}
    return options, rest


def _steering(layer: Mapping[str, Any]) -> dict[str, Any]:
    given = layer.get("attributes")
    if given is not None and not isinstance(given, Mapping):
        raise ConfigurationError(f"attributes must be a dict of name -> integer, got {given!r}")
    merged = {k: v for k, v in dict(given or {}).items() if v is not None}
    merged.update({k: layer[k] for k in ATTRIBUTE_NAMES if layer.get(k) is not None})
    return merged


def resolve_options(profile: str | ModelProfile, *layers: Mapping[str, Any] | None) -> RequestOptions:
    """Merge option layers (later wins) and validate them for `profile` (see the module docstring).

    Raises ConfigurationError for an unknown key, a bad parameter or a bad attribute.
    """
    resolved = get_profile(profile)
    present = [layer for layer in layers if layer]
    for layer in present:
        unknown = sorted(set(layer) - _OPTION_SET)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {unknown}; known: generation parameters {list(PARAM_NAMES)}, "
                f"'attributes' and the steering attributes of {resolved.name!r}: "
                f"{list(resolved.attribute_names)}"
            )
    params = GenerationParams()
    for layer in present:
        params = params.merge(**{k: layer[k] for k in PARAM_NAMES if k in layer})
    steering = [_steering(layer) for layer in present]
    if resolved.family == "reward":
        raise ConfigurationError(f"{resolved.name!r} is a reward model; it does not generate text")
    return RequestOptions(attributes=resolved.resolve_attributes(*steering), params=params)


def refine_options(base: RequestOptions, profile: ModelProfile, layer: Mapping[str, Any] | None) -> RequestOptions:
    """`base` — already resolved for `profile` by `resolve_options` — with one more layer merged over
    it. Only the new layer is validated, so an adapter resolves its fields once and each call costs
    only its own options (an empty layer returns `base` itself).

    Raises ConfigurationError like `resolve_options`.
    """
    if not layer:
        return base
    unknown = sorted(set(layer) - _OPTION_SET)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {unknown}; known: generation parameters {list(PARAM_NAMES)}, "
            f"'attributes' and the steering attributes of {profile.name!r}: {list(profile.attribute_names)}"
        )
    params = base.params.merge(**{k: layer[k] for k in PARAM_NAMES if k in layer})
    steering = _steering(layer)
    attributes = profile.resolve_attributes(base.attributes, steering) if steering else base.attributes
    return RequestOptions(attributes=attributes, params=params)


def with_tool_instructions(
    messages: Iterable[Message],
    tools: Sequence[ToolSpec],
    tool_choice: str | None,
    profile: str | ModelProfile,
) -> list[Message]:
    """The conversation with the tool protocol's instructions added to its system turn.

    No tools (or ``tool_choice="none"``) returns the messages unchanged.
    """
    return with_system_text(messages, tool_instructions(tools, tool_choice), profile)


def with_system_text(messages: Iterable[Message], text: str, profile: str | ModelProfile) -> list[Message]:
    """The conversation with `text` (protocol instructions) added as a system turn after the last one, or
    after the profile's default system text when there is none; empty `text` changes nothing."""
    items = list(messages)
    if not text:
        return items
    if any(m.role == "system" for m in items):
        last = max(i for i, m in enumerate(items) if m.role == "system")
        return [*items[: last + 1], Message(role="system", content=text), *items[last + 1:]]
    default = get_profile(profile).default_system
    system = f"{default}\n\n{text}" if default else text
    return [Message(role="system", content=system), *items]
