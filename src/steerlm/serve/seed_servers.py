"""Signatures of the other servers: reward model, TensorRT-LLM ensemble, NeMo Export-Deploy, Triton's vLLM backend.

Signatures (``--model NAME=SIGNATURE``): ``reward`` / ``reward_v0_1`` (NeMo-Aligner,
`steerlm.serve.reward`), ``trtllm`` / ``trtllm_streaming`` / ``trtllm_streaming_empty_final`` (INT32,
v0.12+), ``trtllm_uint32`` / ``trtllm_uint32_streaming`` (v0.6), ``trtllm_v0_5``, ``trtllm_guided`` /
``trtllm_guided_streaming`` (v0.17+, guided-decoding inputs; `steerlm.serve.ensemble`),
``export_deploy_megatron`` / ``export_deploy_hf`` / ``export_deploy_vllm`` (NeMo Export-Deploy's ``prompts`` ->
``sentences`` deployables, `steerlm.serve.export_deploy`) and ``vllm_backend`` (Triton's vLLM backend,
`steerlm.serve.vllm_backend`). The presets that serve them with scripted test backends (``reward``,
``ensemble``, ``current-servers``) are the test kit's (``steerlm_testing.presets``).

Imported by `steerlm.serve.registry`; nothing heavy is imported here.
"""

from __future__ import annotations

from steerlm.serve.registry import register_signature

__all__: list[str] = []

for _name, _ref in {
    "reward": "steerlm.serve.reward:bind",
    "reward_v0_1": "steerlm.serve.reward:bind_v0_1",
    "trtllm": "steerlm.serve.ensemble:bind_int32",
    "trtllm_streaming": "steerlm.serve.ensemble:bind_int32_streaming",
    "trtllm_streaming_empty_final": "steerlm.serve.ensemble:bind_int32_streaming_empty_final",
    "trtllm_uint32": "steerlm.serve.ensemble:bind_uint32",
    "trtllm_uint32_streaming": "steerlm.serve.ensemble:bind_uint32_streaming",
    "trtllm_v0_5": "steerlm.serve.ensemble:bind_v0_5",
    "trtllm_guided": "steerlm.serve.ensemble:bind_guided",
    "trtllm_guided_streaming": "steerlm.serve.ensemble:bind_guided_streaming",
    "export_deploy_megatron": "steerlm.serve.export_deploy:bind_megatron",
    "export_deploy_hf": "steerlm.serve.export_deploy:bind_hf",
    "export_deploy_vllm": "steerlm.serve.export_deploy:bind_vllm",
    "vllm_backend": "steerlm.serve.vllm_backend:bind",
}.items():
    register_signature(_name, _ref)
