"""`SteeringFields`: the steering attributes as pydantic fields, one definition for every adapter.

A pydantic v2 mixin: the LangChain models (``class ChatSteerLM(SteerLMFields, BaseChatModel)`` with
``SteerLMFields(SteeringFields)``) and the LlamaIndex LLM (``SteerLMFields(SteeringFields,
FunctionCallingLLM)``) inherit the same fields, defaults and descriptions. There is one optional integer
field per attribute of every set (`steerlm.requests.ATTRIBUTE_NAMES`: HelpSteer, OASST, HelpSteer2) and
``attributes``, the dict form. ``None`` means "not set": the profile's default applies. Names and ranges
are checked per profile by `steerlm.requests.resolve_options` (the range depends on the profile), so the
fields themselves accept any integer.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from steerlm.attributes import HELPSTEER, HELPSTEER2, OASST

__all__ = ["SteeringFields"]


def _describe(name: str) -> str:
    """E.g. "Steering attribute (HelpSteer 0–4, OASST 0–9); None keeps the profile's default."."""
    sets = ", ".join(f"{s.name} {s.low}–{s.high}" for s in (HELPSTEER, OASST, HELPSTEER2) if name in s.names)
    return f"Steering attribute ({sets}); None keeps the profile's default."


class SteeringFields(BaseModel):
    """The steering-attribute fields (a mixin: combine it with a framework's pydantic base class)."""

    # A mixin is never validated itself: its schema is built only if ever needed (the concrete model's is).
    model_config = ConfigDict(defer_build=True)

    attributes: dict[str, int] | None = Field(
        default=None, description="Steering attributes as a dict; a per-attribute field given alongside wins."
    )
    quality: int | None = Field(default=None, description=_describe("quality"))
    toxicity: int | None = Field(default=None, description=_describe("toxicity"))
    humor: int | None = Field(default=None, description=_describe("humor"))
    creativity: int | None = Field(default=None, description=_describe("creativity"))
    helpfulness: int | None = Field(default=None, description=_describe("helpfulness"))
    correctness: int | None = Field(default=None, description=_describe("correctness"))
    coherence: int | None = Field(default=None, description=_describe("coherence"))
    complexity: int | None = Field(default=None, description=_describe("complexity"))
    verbosity: int | None = Field(default=None, description=_describe("verbosity"))
    violence: int | None = Field(default=None, description=_describe("violence"))
    not_appropriate: int | None = Field(default=None, description=_describe("not_appropriate"))
