"""Model signatures, backends and presets of the local server, all registered by name.

Adding a model signature (e.g. a reward model or the TensorRT-LLM ``ensemble``) takes one line in a
preset's tuple below: a `ModelSpec` whose ``signature``/``backend`` are ``"module:attribute"``
references, resolved only when a server starts (so heavy imports such as torch stay lazy)::

    ModelSpec("my-model", "my_package.my_module:bind", "my_package.my_module:Backend"),

or `register_signature` / `register_backend` / `register_model` from code that runs before `serve()`
(the test kit, ``steerlm_testing``, registers its scripted backends and presets that way).
A signature builder takes the backend object and returns a `Binding`; a backend factory takes the
``--backend-option`` strings as keyword arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytriton.model_config import Tensor

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_PRESET",
    "PRESETS",
    "SIGNATURES",
    "Binding",
    "ModelSpec",
    "register_backend",
    "register_model",
    "register_signature",
    "resolve",
    "resolve_models",
]


@dataclass(frozen=True)
class Binding:
    """What PyTriton needs to serve one model (batching settings are added by the server).

    `batching=False` serves the model with ``max_batch_size`` 0: its tensors have no batch dimension.
    """

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    infer: Any  # a PyTriton infer function: list of requests -> list of output dicts (or yields them)
    decoupled: bool = False
    batching: bool = True


SignatureBuilder = Callable[[Any], Binding]
BackendFactory = Callable[..., Any]


DEFAULT_BACKEND = "hf"  # a real model: the embedded tiny Llama unless a checkpoint is given
DEFAULT_PRESET = "hf"


@dataclass(frozen=True)
class ModelSpec:
    """A Triton model to serve: its name, its signature and the backend behind it."""

    name: str
    signature: str
    backend: str = DEFAULT_BACKEND


def _nemo(variant: str, *, streaming: bool = False) -> SignatureBuilder:
    def build(backend: Any) -> Binding:
        from steerlm.serve.nemo_deploy import VARIANTS
        from steerlm.serve.nemo_infer import make_streaming_infer, make_unary_infer

        spec = VARIANTS[variant]
        make = make_streaming_infer if streaming else make_unary_infer
        return Binding(spec.inputs, spec.outputs, make(backend, spec), decoupled=streaming)

    return build


SIGNATURES: dict[str, SignatureBuilder | str] = {
    "current": _nemo("current"),
    "current_streaming": _nemo("current", streaming=True),
    "v2_0": _nemo("v2_0"),
    "legacy_2310": _nemo("legacy_2310"),
}
BACKENDS: dict[str, BackendFactory | str] = {
    "hf": "steerlm.serve.hf:HFBackend",
    "hf-random": "steerlm.serve.hf:random_backend",
}
PRESETS: dict[str, tuple[ModelSpec, ...]] = {
    "hf": (
        ModelSpec("Llama2-70B-SteerLM-Chat", "current", "hf"),
        ModelSpec("Llama2-70B-SteerLM-Chat-streaming", "current_streaming", "hf"),
    ),
    "demo": (  # SmolLM2-135M-Instruct with the SteerLM adapter (steerlm.serve.adapter)
        ModelSpec("SteerLM-SmolLM2-135M", "current", "steerlm.serve.adapter:demo_backend"),
        ModelSpec("SteerLM-SmolLM2-135M-streaming", "current_streaming", "steerlm.serve.adapter:demo_backend"),
        ModelSpec("reward_model", "steerlm.serve.reward:bind", "steerlm.serve.text_scorer:TextFeatureScorer"),
    ),
    "none": (),
}


def register_signature(name: str, builder: SignatureBuilder | str) -> None:
    SIGNATURES[name] = builder


def register_backend(name: str, factory: BackendFactory | str) -> None:
    BACKENDS[name] = factory


def register_model(preset: str, spec: ModelSpec) -> None:
    """Add `spec` to `preset` (created when new), replacing a model of the same name."""
    kept = tuple(m for m in PRESETS.get(preset, ()) if m.name != spec.name)
    PRESETS[preset] = (*kept, spec)


def resolve(ref: Any, table: dict[str, Any], kind: str) -> Any:
    """A registered name, a ``"module:attribute"`` reference, or the object itself."""
    target = table.get(ref, ref) if isinstance(ref, str) else ref
    if not isinstance(target, str):
        return target
    module_name, sep, attribute = target.partition(":")
    if not sep:
        known = ", ".join(sorted(table))
        raise ValueError(f"unknown {kind} {ref!r}: use one of {known} or 'module:attribute'")
    return getattr(importlib.import_module(module_name), attribute)


def resolve_models(preset: str | None, extra: Sequence[ModelSpec] = ()) -> list[ModelSpec]:
    """The preset's models followed by `extra` (which replace preset models of the same name)."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(sorted(PRESETS))}")
    models = {m.name: m for m in PRESETS[name]}
    models.update({m.name: m for m in extra})
    if not models:
        raise ValueError("no models to serve: choose a preset or add --model NAME=SIGNATURE")
    return list(models.values())

import steerlm.serve.seed_servers  # noqa: E402, F401  (reward-model and TensorRT-LLM ensemble signatures)
