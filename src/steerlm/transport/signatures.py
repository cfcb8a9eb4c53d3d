"""Signature detection: pick the codec a model's declared inputs AND outputs call for.

Each signature is a pair (prompt input → text/score output):

| signature | input → output |
|---|---|
| `nemo_deploy` | `prompts` → `outputs` |
| `export_deploy` | `prompts` → `sentences` |
| `vllm_backend` | `text_input` (+ `sampling_parameters`) → `text_output` |
| `trtllm_ensemble` | `text_input` → `text_output` |
| `nemo_rest` | `sentences` → `sentences` |
| `reward_model` | `sentences` → `rewards` |
| `openai` | `prompt` → `text` (synthesised for OpenAI-compatible servers) |

A model matches a signature when it declares both tensors (and the signature's marker inputs: Triton's
vLLM backend is the `text_input` → `text_output` model that also takes `sampling_parameters`); the first
match in this order wins. The pair, not the input alone, tells the REST and reward-model signatures apart
(both take `sentences`), so the result does not depend on which modules happen to be imported.
"""

from __future__ import annotations

from steerlm.errors import ConfigurationError
from steerlm.transport.base import ModelSpec
from steerlm.transport.codecs import Codec
from steerlm.transport.export_deploy import ExportDeployCodec
from steerlm.transport.nemo_deploy import NemoDeployCodec
from steerlm.transport.openai.codec import OpenAICodec
from steerlm.transport.rest_codec import NemoRestCodec
from steerlm.transport.reward_model import RewardCodec
from steerlm.transport.trtllm_ensemble import TrtllmEnsembleCodec
from steerlm.transport.vllm_backend import VllmBackendCodec

__all__ = ["SIGNATURES", "detect", "make_codec"]

SIGNATURES: dict[str, type[Codec]] = {
    codec.name: codec for codec in (NemoDeployCodec, ExportDeployCodec, VllmBackendCodec, TrtllmEnsembleCodec,
                                    NemoRestCodec, RewardCodec, OpenAICodec)
}


def _pair(codec: type[Codec]) -> str:
    marks = "".join(f" + {m}" for m in codec.marker_inputs)
    return f"{codec.name} ({codec.prompt_input}{marks} -> {codec.text_output})"


def _matches(codec: type[Codec], spec: ModelSpec) -> bool:
    return (codec.prompt_input in spec.inputs and codec.text_output in spec.outputs
            and all(m in spec.inputs for m in codec.marker_inputs))


def detect(spec: ModelSpec) -> type[Codec]:
    """The first signature whose prompt input and text/score output `spec` both declares.

    Raises ConfigurationError naming the known pairs, any half-match, and what the server declares.
    """
    for codec in SIGNATURES.values():
        if _matches(codec, spec):
            return codec
    halves = [f"{c.name} needs output {c.text_output!r} with input {c.prompt_input!r}"
              for c in SIGNATURES.values() if c.prompt_input in spec.inputs]
    halves += [f"{c.name} needs input {c.prompt_input!r} with output {c.text_output!r}"
               for c in SIGNATURES.values() if c.text_output in spec.outputs and c.prompt_input not in spec.inputs]
    hint = f" ({'; '.join(halves)})" if halves else ""
    raise ConfigurationError(
        f"model {spec.name!r} matches no known signature{hint}. steerlm knows "
        f"{', '.join(_pair(c) for c in SIGNATURES.values())}; the server declares {spec.describe()}"
    )


def make_codec(spec: ModelSpec, signature: str | None = None) -> Codec:
    """The codec for `spec`: `signature` if given, else detected (`detect`)."""
    if signature is not None:
        if signature not in SIGNATURES:
            raise ConfigurationError(f"unknown signature {signature!r}; known: {sorted(SIGNATURES)}")
        return SIGNATURES[signature](spec)
    return detect(spec)(spec)
