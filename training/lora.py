"""A minimal LoRA for training: low-rank updates on every linear layer of the decoder, plus trainable rows
for the tokens added to the base vocabulary (the SteerLM markers). Saved in the format that
`steerlm.serve.adapter` merges into the base weights."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    """``base(x) + scale · B(A(x))`` with `base` frozen, A random (Kaiming) and B zero at the start."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scale


def add_lora(model: Any, rank: int, alpha: float) -> dict[str, LoRALinear]:
    """Wrap every `TARGETS` linear layer of `model` (everything else frozen); returns them by module name."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    wrapped: dict[str, LoRALinear] = {}
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in TARGETS and isinstance(child, nn.Linear):
                lora = LoRALinear(child, rank, alpha)
                setattr(module, child_name, lora)
                wrapped[f"{name}.{child_name}"] = lora
    return wrapped


def train_new_rows(model: Any, first_new_row: int, extra_rows: tuple[int, ...] = ()) -> torch.Tensor:
    """Make the input embedding (tied to the output layer) trainable in its rows from `first_new_row` and
    in `extra_rows` only."""
    weight: torch.Tensor = model.get_input_embeddings().weight
    weight.requires_grad_(True)
    mask = torch.zeros(weight.shape[0], 1)
    mask[first_new_row:] = 1.0
    mask[list(extra_rows)] = 1.0
    weight.register_hook(lambda grad: grad * mask.to(grad.device))
    return weight


def load_adapter(path: Path, wrapped: dict[str, LoRALinear], embedding: torch.Tensor, first_new_row: int) -> None:
    """Start from a saved adapter (to continue training): its LoRA factors and new embedding rows."""
    from safetensors.torch import load_file

    tensors = load_file(str(path), device=str(embedding.device))
    with torch.no_grad():
        for name, module in wrapped.items():
            module.lora_A.copy_(tensors[f"{name}.lora_A"].float())
            module.lora_B.copy_(tensors[f"{name}.lora_B"].float())
        embedding[first_new_row:] = tensors["new_embedding_rows"]
        if "embedding_row_ids" in tensors:
            embedding[tensors["embedding_row_ids"]] = tensors["embedding_rows"]


def save_adapter(path: Path, wrapped: dict[str, LoRALinear], embedding: torch.Tensor, first_new_row: int,
                 rank: int, alpha: float, info: dict[str, Any], extra_rows: tuple[int, ...] = ()) -> None:
    """Write the LoRA factors (float16) and the new embedding rows (float32) with their settings as metadata."""
    tensors = {}
    for name, module in wrapped.items():
        tensors[f"{name}.lora_A"] = module.lora_A.detach().to("cpu", torch.float16).contiguous()
        tensors[f"{name}.lora_B"] = module.lora_B.detach().to("cpu", torch.float16).contiguous()
    tensors["new_embedding_rows"] = embedding.detach()[first_new_row:].cpu().clone().contiguous()
    if extra_rows:  # trained rows of the base vocabulary (the digits of the label line)
        tensors["embedding_row_ids"] = torch.tensor(extra_rows, dtype=torch.int64)
        tensors["embedding_rows"] = embedding.detach()[list(extra_rows)].cpu().clone().contiguous()
    metadata = {"format": "steerlm-lora-1", "rank": str(rank), "alpha": str(alpha),
                "first_new_row": str(first_new_row), "info": json.dumps(info, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(staging), metadata=metadata)
    os.replace(staging, path)  # readers never see a half-written adapter


def train_linear_weights(model: Any) -> dict[str, nn.Linear]:
    """Full fine-tuning of every `TARGETS` linear layer (everything else frozen); returns them by name."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    layers = {name: module for name, module in model.named_modules()
              if name.rsplit(".", 1)[-1] in TARGETS and isinstance(module, nn.Linear)}
    for module in layers.values():
        module.weight.requires_grad_(True)
    return layers


def low_rank_deltas(layers: dict[str, nn.Linear], base: dict[str, torch.Tensor], rank: int) -> dict[str, LoRALinear]:
    """The best rank-`rank` approximation (truncated SVD) of each layer's change, as LoRA factors with
    scale 1 (``alpha == rank``): ``B @ A ≈ W_trained − W_base``."""
    out: dict[str, LoRALinear] = {}
    for name, module in layers.items():
        delta = module.weight.detach().float() - base[name].to(module.weight.device).float()
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        root = s[:rank].sqrt()
        holder = LoRALinear(nn.Linear(delta.shape[1], delta.shape[0], bias=False), rank, float(rank))
        with torch.no_grad():
            holder.lora_A.copy_(root[:, None] * vh[:rank])
            holder.lora_B.copy_(u[:, :rank] * root[None, :])
        out[name] = holder
    return out
