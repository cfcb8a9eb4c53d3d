"""Registrations for the other seed servers: reward model and TensorRT-LLM ensemble (signatures, presets).

Signatures (``--model NAME=SIGNATURE``): ``reward`` / ``reward_v0_1`` (NeMo-Aligner,
`steerlm.serve.reward`), ``trtllm`` / ``trtllm_streaming`` / ``trtllm_streaming_empty_final`` (INT32,
v0.12+), ``trtllm_uint32`` / ``trtllm_uint32_streaming`` (v0.6), ``trtllm_v0_5`` (`steerlm.serve.ensemble`). Presets:

* ``reward``: ``reward_model`` (current Aligner signature), ``reward_model_v0_1`` and a
  ``Llama2-70B-SteerLM-Chat`` whose reply length follows ``verbosity`` (`steerlm.serve.steered`);
* ``ensemble``: ``ensemble`` (INT32, unary), ``ensemble-streaming`` (INT32, decoupled, final flag on the
  last data response), ``ensemble-streaming-empty-final`` (the same ending in an empty final response),
  ``ensemble-uint32`` / ``ensemble-uint32-streaming`` (UINT32, v0.6) and ``ensemble-v0.5``.

Imported by `steerlm.serve.registry`; nothing heavy is imported here.
"""

from __future__ import annotations

from steerlm.serve.registry import ModelSpec, register_model, register_signature

__all__ = ["ENSEMBLE_MODELS", "REWARD_MODELS"]

for _name, _ref in {
    "reward": "steerlm.serve.reward:bind",
    "reward_v0_1": "steerlm.serve.reward:bind_v0_1",
    "trtllm": "steerlm.serve.ensemble:bind_int32",
    "trtllm_streaming": "steerlm.serve.ensemble:bind_int32_streaming",
    "trtllm_streaming_empty_final": "steerlm.serve.ensemble:bind_int32_streaming_empty_final",
    "trtllm_uint32": "steerlm.serve.ensemble:bind_uint32",
    "trtllm_uint32_streaming": "steerlm.serve.ensemble:bind_uint32_streaming",
    "trtllm_v0_5": "steerlm.serve.ensemble:bind_v0_5",
}.items():
    register_signature(_name, _ref)

REWARD_MODELS = (
    ModelSpec("reward_model", "reward"),
    ModelSpec("reward_model_v0_1", "reward_v0_1"),
    ModelSpec("Llama2-70B-SteerLM-Chat", "current", "steerlm.serve.steered:SteeredBackend"),
)
ENSEMBLE_MODELS = (
    ModelSpec("ensemble", "trtllm"),
    ModelSpec("ensemble-streaming", "trtllm_streaming"),
    ModelSpec("ensemble-streaming-empty-final", "trtllm_streaming_empty_final"),
    ModelSpec("ensemble-uint32", "trtllm_uint32"),
    ModelSpec("ensemble-uint32-streaming", "trtllm_uint32_streaming"),
    ModelSpec("ensemble-v0.5", "trtllm_v0_5"),
)
for _spec in REWARD_MODELS:
    register_model("reward", _spec)
for _spec in ENSEMBLE_MODELS:
    register_model("ensemble", _spec)
