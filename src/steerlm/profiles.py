"""One `ModelProfile` per seed model: template family, system text, attributes, stops, window, server.

Sources (files in shared/seeds/):

* Llama2-70B-SteerLM-Chat — 000: SteerLM template, no blank line after the system text, HelpSteer
  attributes 0–4, defaults `quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,
  coherence:4,complexity:4,verbosity:4`, NeMo deploy Triton, output cut at `\\n<extra_id_1>`.
* SteerLM-Llama2-13B — 001: SteerLM template with one blank line after the system text, OASST
  attributes 0–9, defaults `quality:9,toxicity:0,humor:0,creativity:0,violence:0,helpfulness:9,
  not_appropriate:0`, NeMo REST `PUT /generate`, end strings `<extra_id_1>`, `quality:`.
* NV-Llama2-70B-RLHF-Chat — 002: NeMo chat template with an empty system, no attributes, NeMo deploy.
* Llama3-70B-PPO-Chat — 003: same template as 002, NeMo deploy.
* Llama3-70B-SteerLM-Chat — named in 003's table only: SteerLM template (no blank line, like 000)
  with the 5 HelpSteer2 attributes, defaults helpfulness 4, correctness 4, coherence 4, complexity 2,
  verbosity 2 (a choice: the seeds give no defaults), default system text as 000.
* Llama2-13B-SteerLM-RM — 004: reward model; conversations are rendered like 000 and end in
  `<extra_id_2>`; served by NeMo-Aligner's PyTriton `reward_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from steerlm.attributes import HELPSTEER, HELPSTEER2, OASST, AttributeSet
from steerlm.errors import ConfigurationError
from steerlm.suggest import did_you_mean

__all__ = ["STEERLM_SYSTEM_PROMPT", "ModelProfile", "find_profile", "get_profile", "list_profiles", "profile_for"]

STEERLM_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
END_OF_TURN = "<extra_id_1>"

Family = Literal["steerlm", "nemo_chat", "reward"]
ServerKind = Literal["nemo_deploy", "nemo_rest", "reward_model"]


@dataclass(frozen=True)
class ModelProfile:
    """Everything about one seed model that affects the prompt and the client."""

    name: str
    family: Family
    default_system: str
    blank_line_after_system: bool
    attribute_set: AttributeSet | None
    default_attributes: Mapping[str, int]
    stop_strings: tuple[str, ...]
    server_kind: ServerKind
    context_window: int = 4096
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def steerable(self) -> bool:
        """True when the generation prompt carries an `<extra_id_2>` label line."""
        return self.attribute_set is not None and self.family == "steerlm"

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return self.attribute_set.names if self.attribute_set else ()

    def resolve_attributes(self, *overrides: Mapping[str, object] | None) -> dict[str, int]:
        """Full, ordered attribute values: the profile defaults updated by each override.

        Raises ConfigurationError for attributes on a profile that has none, unknown names and
        out-of-range values.
        """
        for override in overrides:
            if override is not None and not isinstance(override, Mapping):
                raise ConfigurationError(f"attributes must be a dict of name -> integer such as {{'verbosity': 4}}, "
                                         f"got {type(override).__name__} {str(override)[:40]!r}")
        if self.attribute_set is None:
            given = sorted({k for o in overrides if o for k, v in o.items() if v is not None})
            if given:
                raise ConfigurationError(
                    f"model {self.name!r} takes no steering attributes (got {given}); "
                    "use a SteerLM profile such as 'Llama2-70B-SteerLM-Chat'"
                )
            return {}
        return self.attribute_set.resolve(self.default_attributes, *overrides, model=self.name)


def _frozen(values: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(values)


_HELPSTEER_DEFAULTS = {"quality": 4, "toxicity": 0, "humor": 0, "creativity": 0, "helpfulness": 4,
                       "correctness": 4, "coherence": 4, "complexity": 4, "verbosity": 4}

_PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile(
        name="Llama2-70B-SteerLM-Chat", family="steerlm", default_system=STEERLM_SYSTEM_PROMPT,
        blank_line_after_system=False, attribute_set=HELPSTEER,
        default_attributes=_frozen(dict(_HELPSTEER_DEFAULTS)),
        stop_strings=(END_OF_TURN,), server_kind="nemo_deploy",
        source="seeds/000 PROMPT_TEMPLATE and 'Default template for Multi-Turn'",
    ),
    ModelProfile(
        name="SteerLM-Llama2-13B", family="steerlm", default_system=STEERLM_SYSTEM_PROMPT,
        blank_line_after_system=True, attribute_set=OASST,
        default_attributes=_frozen({"quality": 9, "toxicity": 0, "humor": 0, "creativity": 0,
                                    "violence": 0, "helpfulness": 9, "not_appropriate": 0}),
        stop_strings=(END_OF_TURN, "quality:"), server_kind="nemo_rest",
        source="seeds/001 get_answer() prompt, end_strings and OrderedDict values",
        notes=("multi-turn layout is not in the card; it follows the NeMo v1.20-v1.21 assembly",),
    ),
    ModelProfile(
        name="NV-Llama2-70B-RLHF-Chat", family="nemo_chat", default_system="",
        blank_line_after_system=False, attribute_set=None, default_attributes=_frozen({}),
        stop_strings=(END_OF_TURN,), server_kind="nemo_deploy",
        source="seeds/002 'Prompt Format' table and closed-QA PROMPT_TEMPLATE (markers restored)",
    ),
    ModelProfile(
        name="Llama3-70B-PPO-Chat", family="nemo_chat", default_system="",
        blank_line_after_system=False, attribute_set=None, default_attributes=_frozen({}),
        stop_strings=(END_OF_TURN,), server_kind="nemo_deploy",
        source="seeds/003 PROMPT_TEMPLATE and templates (line breaks restored)",
    ),
    ModelProfile(
        name="Llama3-70B-SteerLM-Chat", family="steerlm", default_system=STEERLM_SYSTEM_PROMPT,
        blank_line_after_system=False, attribute_set=HELPSTEER2,
        default_attributes=_frozen({"helpfulness": 4, "correctness": 4, "coherence": 4,
                                    "complexity": 2, "verbosity": 2}),
        stop_strings=(END_OF_TURN,), server_kind="nemo_deploy",
        source="seeds/003 evaluation table (name only); template of seeds/000 with HelpSteer2 labels",
        notes=("template, system text and defaults are not in the seeds: chosen as documented",),
    ),
    ModelProfile(
        name="Llama2-13B-SteerLM-RM", family="reward", default_system=STEERLM_SYSTEM_PROMPT,
        blank_line_after_system=False, attribute_set=HELPSTEER,
        default_attributes=_frozen(dict(_HELPSTEER_DEFAULTS)),
        stop_strings=(), server_kind="reward_model",
        source="seeds/004 and NeMo-Aligner attribute_annotate.py (REFERENCE §3c)",
    ),
)
_BY_NAME = {p.name.lower(): p for p in _PROFILES}


def list_profiles() -> list[str]:
    """The names of every known profile, in seed order."""
    return [p.name for p in _PROFILES]


def find_profile(name: str) -> ModelProfile | None:
    """The profile called `name` (case-insensitive), or None."""
    return _BY_NAME.get(name.strip().lower())


def get_profile(name: str | ModelProfile) -> ModelProfile:
    """The profile called `name` (case-insensitive); a ModelProfile is returned unchanged."""
    if isinstance(name, ModelProfile):
        return name
    profile = find_profile(name) if isinstance(name, str) else None
    if profile is None:
        raise ConfigurationError(
            f"unknown model profile {name!r}{did_you_mean(name, list_profiles())}; known profiles: "
            f"{', '.join(list_profiles())}"
        )
    return profile


def profile_for(profile: str | ModelProfile | None, model: str) -> ModelProfile:
    """`profile` when given, else the profile named like `model` — or ConfigurationError with a
    did-you-mean for a misspelled model name and the list of profiles to pass as ``profile=``."""
    if profile is not None:
        return get_profile(profile)
    found = find_profile(model) if isinstance(model, str) else None
    if found is None:
        raise ConfigurationError(
            f"model {model!r} does not name a steerlm profile{did_you_mean(model, list_profiles())}, so the "
            f"prompt template is unknown; for a model served under another name pass profile= one of: "
            f"{', '.join(list_profiles())}"
        )
    return found
