"""The demo model: SmolLM2-135M-Instruct plus the committed SteerLM LoRA adapter, merged and cached.

`ADAPTER_PATH` is a small safetensors file trained by ``training/train.py`` (format ``steerlm-lora-1``):
``<module>.lora_A`` (rank × in) and ``<module>.lora_B`` (out × rank) for every adapted linear layer, and
``new_embedding_rows`` for the tokens the base checkpoint appended (the three SteerLM markers), optionally
``embedding_rows`` for the base-vocabulary rows listed in ``embedding_row_ids`` (the digits of the label
line); the metadata holds ``rank``, ``alpha`` and ``first_new_row``. `merge_adapter` adds
``alpha / rank · B @ A`` to each weight and copies the rows in, so serving costs nothing extra.

`ensure_demo_model()` builds the merged checkpoint once under the cache (``~/.cache/steerlm/`` or
``$STEERLM_CACHE_DIR``), keyed by the base package and library versions and the adapter's hash, in a
temporary directory renamed into place; `demo_backend` serves it (``steerlm serve --preset demo``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from steerlm.serve.smollm import ModelMissingError, atomic_build, ensure_base_model, versions_key
from steerlm.serve.tiny_model import cache_root, quiet_transformers

__all__ = ["ADAPTER_PATH", "DEMO_MODEL", "adapter_digest", "cpu_dtype", "demo_backend", "ensure_demo_model",
           "merge_adapter"]

ADAPTER_PATH = Path(__file__).resolve().parent / "adapters" / "smollm2-135m-steerlm-lora.safetensors"
DEMO_MODEL = "SteerLM-SmolLM2-135M"
ADAPTER_FORMAT = "steerlm-lora-1"


def adapter_digest(path: Path = ADAPTER_PATH) -> str:
    """The adapter file's SHA-256 (part of the merged checkpoint's cache key)."""
    if not path.is_file():
        raise ModelMissingError(f"the SteerLM adapter {path} is missing: reinstall steerlm, or train it with "
                                "training/train.py (see training/README.md)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def merge_adapter(model: Any, path: Path = ADAPTER_PATH) -> int:
    """Add the adapter in `path` to `model`'s weights in place; returns the number of merged layers."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != ADAPTER_FORMAT:
            raise ValueError(f"{path} is not a {ADAPTER_FORMAT} adapter (format {metadata.get('format')!r})")
        scale = float(metadata["alpha"]) / int(metadata["rank"])
        first_new_row = int(metadata["first_new_row"])
        modules = dict(model.named_modules())
        names_in_file = set(handle.keys())
        names = sorted({key.rsplit(".", 1)[0] for key in names_in_file if key.endswith(".lora_A")})
        with torch.no_grad():
            for name in names:
                weight = modules[name].weight
                a = handle.get_tensor(f"{name}.lora_A").to(torch.float32)
                b = handle.get_tensor(f"{name}.lora_B").to(torch.float32)
                weight += (scale * (b @ a)).to(weight.dtype)
            rows = handle.get_tensor("new_embedding_rows")
            embedding = model.get_input_embeddings().weight
            if embedding.shape[0] != first_new_row + rows.shape[0]:
                raise ValueError(f"{path} expects {first_new_row + rows.shape[0]} embedding rows, "
                                 f"the base model has {embedding.shape[0]}")
            embedding[first_new_row:] = rows.to(embedding.dtype)
            if "embedding_row_ids" in names_in_file:  # trained rows of the base vocabulary
                trained = handle.get_tensor("embedding_rows").to(embedding.dtype)
                embedding[handle.get_tensor("embedding_row_ids")] = trained
    return len(names)


def _merge_into(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    base = ensure_base_model()
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
    merge_adapter(model)
    model.save_pretrained(target)
    tokenizer: Any = AutoTokenizer.from_pretrained(base, local_files_only=True)
    tokenizer.save_pretrained(target)


def ensure_demo_model(root: str | os.PathLike[str] | None = None) -> Path:
    """The cached merged checkpoint (base model + adapter), built first when missing."""
    base = Path(root) if root is not None else cache_root()
    key = versions_key("adapter=" + adapter_digest())
    return atomic_build(base / f"steerlm-smollm2-135m-{key}", _merge_into)


def cpu_dtype() -> str:
    """``bfloat16`` on CPUs with bfloat16 matrix units (AMX or AVX512-BF16: several times faster there),
    else ``float32``."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    fast = any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return "bfloat16" if fast else "float32"


def demo_backend(device: str | None = None, dtype: str | None = None, **options: Any) -> Any:
    """Backend factory of the ``demo`` preset: an `HFBackend` on the merged demo checkpoint. `dtype`
    ``auto`` (the default) is bfloat16 on a GPU and `cpu_dtype()` on the CPU."""
    from steerlm.serve.hf import HFBackend, resolve_device

    options.pop("model", None)
    if dtype in (None, "", "auto") and resolve_device(device)[0].type == "cpu":
        dtype = cpu_dtype()
    return HFBackend(model=str(ensure_demo_model()), device=device, dtype=dtype, **options)
