"""The kit's backends and presets, registered into the product's server registry.

Backends: ``scripted`` (`ScriptedBackend`, steered by ``[[directives]]``), ``scripted-steered``
(`SteeredBackend`, reply length follows ``verbosity``) and ``scripted-reward`` (`ScriptedScorer`, for
the reward signatures). Presets:

* ``test`` (the kit's default): ``Llama2-70B-SteerLM-Chat`` and its ``-streaming`` twin (NeMo deploy's
  current signature), ``nemo-v2.0`` and ``nemo-2310`` (older signatures);
* ``minimal``: the first two of ``test``;
* ``reward``: ``reward_model`` (current NeMo-Aligner signature), ``reward_model_v0_1`` and a
  ``Llama2-70B-SteerLM-Chat`` whose reply length follows ``verbosity``;
* ``ensemble``: the TensorRT-LLM ``ensemble`` variants: ``ensemble`` (INT32, unary),
  ``ensemble-streaming`` (INT32, decoupled, final flag on the last data response),
  ``ensemble-streaming-empty-final`` (the same ending in an empty final response),
  ``ensemble-uint32`` / ``ensemble-uint32-streaming`` (UINT32, v0.6), ``ensemble-v0.5`` and
  ``ensemble-guided`` / ``ensemble-guided-streaming`` (v0.17+: the guided-decoding inputs);
* ``docs``: every model name the documentation's samples use, scripted: the demo model's names
  (``SteerLM-SmolLM2-135M`` and its decoupled ``-streaming`` twin; reply length follows ``verbosity``, as
  the real model's roughly does, for the steering check), ``Llama2-70B-SteerLM-Chat`` (the same) and its
  ``-streaming`` twin, and the demo preset's
  ``reward_model`` (the text-feature scorer, so the docs show what ``steerlm serve --preset demo`` returns),
  and ``vllm_model`` (Triton's vLLM backend signature, for the log-probability samples);
* ``current-servers``: NeMo Export-Deploy's deployables ``megatron-deployable``, ``hf-deployable`` and
  ``vllm-exporter`` (``prompts`` -> ``sentences``) and ``vllm_model`` (Triton's vLLM backend: decoupled,
  unbatched, server-side stops, token counts).

`register` is idempotent; `steerlm_testing.serve` calls it before serving. Nothing heavy is imported.
"""

from __future__ import annotations

from steerlm.serve.registry import ModelSpec, register_backend, register_model

__all__ = ["PRESET_MODELS", "SCRIPTED", "TEST_PRESET", "register"]

SCRIPTED = "scripted"
TEST_PRESET = "test"
_BACKENDS = {
    SCRIPTED: "steerlm_testing.scripted:ScriptedBackend",
    "scripted-steered": "steerlm_testing.steered:SteeredBackend",
    "scripted-reward": "steerlm_testing.reward_scorer:ScriptedScorer",
}
_CHAT = (
    ModelSpec("Llama2-70B-SteerLM-Chat", "current", SCRIPTED),
    ModelSpec("Llama2-70B-SteerLM-Chat-streaming", "current_streaming", SCRIPTED),
)
PRESET_MODELS: dict[str, tuple[ModelSpec, ...]] = {
    TEST_PRESET: (
        *_CHAT,
        ModelSpec("nemo-v2.0", "v2_0", SCRIPTED),
        ModelSpec("nemo-2310", "legacy_2310", SCRIPTED),
    ),
    "minimal": _CHAT,
    "reward": (
        ModelSpec("reward_model", "reward", "scripted-reward"),
        ModelSpec("reward_model_v0_1", "reward_v0_1", "scripted-reward"),
        ModelSpec("Llama2-70B-SteerLM-Chat", "current", "scripted-steered"),
    ),
    "ensemble": (
        ModelSpec("ensemble", "trtllm", SCRIPTED),
        ModelSpec("ensemble-streaming", "trtllm_streaming", SCRIPTED),
        ModelSpec("ensemble-streaming-empty-final", "trtllm_streaming_empty_final", SCRIPTED),
        ModelSpec("ensemble-uint32", "trtllm_uint32", SCRIPTED),
        ModelSpec("ensemble-uint32-streaming", "trtllm_uint32_streaming", SCRIPTED),
        ModelSpec("ensemble-v0.5", "trtllm_v0_5", SCRIPTED),
        ModelSpec("ensemble-guided", "trtllm_guided", SCRIPTED),
        ModelSpec("ensemble-guided-streaming", "trtllm_guided_streaming", SCRIPTED),
    ),
    "docs": (
        ModelSpec("SteerLM-SmolLM2-135M", "current", "scripted-steered"),
        ModelSpec("SteerLM-SmolLM2-135M-streaming", "current_streaming", "scripted-steered"),
        ModelSpec("Llama2-70B-SteerLM-Chat", "current", "scripted-steered"),
        ModelSpec("Llama2-70B-SteerLM-Chat-streaming", "current_streaming", SCRIPTED),
        ModelSpec("reward_model", "reward", "steerlm.serve.text_scorer:TextFeatureScorer"),
        ModelSpec("vllm_model", "vllm_backend", SCRIPTED),  # docs/logprobs.md
        ModelSpec("ensemble", "trtllm_guided", SCRIPTED),  # docs/structured-output.md (TRT-LLM >= 0.17 inputs)
    ),
    "current-servers": (
        ModelSpec("megatron-deployable", "export_deploy_megatron", SCRIPTED),
        ModelSpec("hf-deployable", "export_deploy_hf", SCRIPTED),
        ModelSpec("vllm-exporter", "export_deploy_vllm", SCRIPTED),
        ModelSpec("vllm_model", "vllm_backend", SCRIPTED),
    ),
}


def register() -> None:
    """Add the kit's backends and presets to the server registry."""
    for name, factory in _BACKENDS.items():
        register_backend(name, factory)
    for preset, models in PRESET_MODELS.items():
        for spec in models:
            register_model(preset, spec)
