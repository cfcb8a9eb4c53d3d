"""Signature detection: pick the codec a model's declared inputs and outputs call for."""

from __future__ import annotations

from steerlm.errors import ConfigurationError
from steerlm.transport.base import ModelSpec
from steerlm.transport.codecs import Codec
from steerlm.transport.nemo_deploy import NemoDeployCodec
from steerlm.transport.trtllm_ensemble import TrtllmEnsembleCodec

__all__ = ["SIGNATURES", "make_codec"]

SIGNATURES: dict[str, type[Codec]] = {
    NemoDeployCodec.name: NemoDeployCodec,
    TrtllmEnsembleCodec.name: TrtllmEnsembleCodec,
}


def make_codec(spec: ModelSpec, signature: str | None = None) -> Codec:
    """The codec for `spec`: `signature` if given, else detected from the prompt input's name.

    Raises ConfigurationError naming what the server declares when no known signature fits.
    """
    if signature is not None:
        if signature not in SIGNATURES:
            raise ConfigurationError(f"unknown signature {signature!r}; known: {sorted(SIGNATURES)}")
        return SIGNATURES[signature](spec)
    for codec in SIGNATURES.values():
        if codec.prompt_input in spec.inputs:
            return codec(spec)
    raise ConfigurationError(
        f"model {spec.name!r} has no known text-generation signature: steerlm needs a "
        f"'prompts' input (NeMo deploy) or a 'text_input' input (TensorRT-LLM ensemble); "
        f"the server declares {spec.describe()}"
    )
