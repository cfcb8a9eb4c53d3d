"""The embedded default model of ``steerlm serve``: a tiny, untrained Llama, built offline.

`ensure_tiny_model()` returns a Hugging Face checkpoint directory (``config.json``,
``model.safetensors``, ``tokenizer.json``, ...) that it builds once, deterministically, into the cache
(``$STEERLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/steerlm``, else ``~/.cache/steerlm``), under a name
holding a hash of the recipe: ``tiny-llama-<hash>``. Nothing is downloaded:

* the tokenizer is a byte-level BPE trained in milliseconds on `CORPUS` (a few sentences about this
  project and some NeMo-format conversations), with ``<s>``, ``</s>``, ``<pad>`` and the three
  ``<extra_id_N>`` markers as special tokens, so ``<extra_id_1>`` is one token that can end a turn;
* the model is ``LlamaForCausalLM`` with `MODEL_CONFIG` (about 140 thousand parameters), its weights
  drawn with a fixed torch seed. It is **not trained**: it generates nonsense words. Its
  ``generation_config.suppress_tokens`` lists byte pieces and control characters, so the nonsense is
  at least printable. Everything else about it is real (loader, generation, streaming, stop handling).

The build happens in a temporary directory next to the target, which is then renamed into place, so
concurrent builders never see (or leave) a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from steerlm.serve.cache_dir import build_once

__all__ = [
    "CORPUS",
    "END_OF_TURN",
    "MANIFEST",
    "MARKERS",
    "MODEL_CONFIG",
    "build_tiny_model",
    "cache_root",
    "ensure_tiny_model",
    "quiet_transformers",
    "recipe_hash",
]

RECIPE_VERSION = 2  # bump whenever the build below changes
SEED = 1234
MARKERS = ("<extra_id_0>", "<extra_id_1>", "<extra_id_2>")
END_OF_TURN = "<extra_id_1>"
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (BOS, EOS, PAD, *MARKERS)
SPECIAL_IDS = {token: index for index, token in enumerate(SPECIAL_TOKENS)}  # the BPE trainer puts them first
MANIFEST = "steerlm-tiny-model.json"
MODEL_CONFIG: dict[str, Any] = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}
CORPUS = (
    "SteerLM is a way to steer a language model at inference time with attribute values such as "
    "quality, toxicity, humor, creativity, helpfulness, correctness, coherence, complexity and verbosity.",
    "The local server speaks the NeMo deploy signature over HTTP and gRPC, so the same client talks to a "
    "laptop and to a cluster of GPUs. Streaming responses carry the cumulative text of the answer.",
    "Retrieval augmented generation finds the passages that answer a question and puts them into the "
    "prompt as context. The assistant should say when the answer cannot be found in the context.",
    "Triton Inference Server runs models written in Python, PyTorch and TensorRT. Dynamic batching "
    "merges requests that arrive together; a decoupled model may send many responses for one request.",
    "The quick brown fox jumps over the lazy dog, and the five boxing wizards jump quickly.",
    "<extra_id_0>System\nA chat between a curious user and an artificial intelligence assistant. The "
    "assistant gives helpful, detailed, and polite answers to the user's questions.\n"
    "<extra_id_1>User\nWhat is the capital of France?\n<extra_id_1>Assistant\n"
    "<extra_id_2>quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,"
    "complexity:4,verbosity:4\nThe capital of France is Paris.\n<extra_id_1>",
    "<extra_id_0>System\n\n<extra_id_1>User\nContext: The tiny model has two layers.\nHow many layers does "
    "the tiny model have?\n<extra_id_1>Assistant\nIt has two layers.\n<extra_id_1>",
)


def recipe_hash() -> str:
    """A short hash of everything that determines the built checkpoint."""
    recipe = {
        "version": RECIPE_VERSION,
        "seed": SEED,
        "config": MODEL_CONFIG,
        "special_tokens": SPECIAL_TOKENS,
        "corpus": CORPUS,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def cache_root() -> Path:
    """Where built models live: ``$STEERLM_CACHE_DIR`` or ``$XDG_CACHE_HOME/steerlm`` or ``~/.cache/steerlm``."""
    explicit = os.environ.get("STEERLM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "steerlm"


def quiet_transformers() -> None:
    """No progress bars or warnings from ``transformers`` (the server's stderr is its log)."""
    from transformers.utils import logging as hf_logging

    calls: tuple[Any, ...] = (hf_logging.disable_progress_bar, hf_logging.set_verbosity_error)
    for call in calls:
        call()


def _build_tokenizer(target: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(list(CORPUS), vocab_size=MODEL_CONFIG["vocab_size"], min_frequency=1,
                            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    # Like Llama: BOS before every prompt (NeMo's servers add it server side).
    bpe.post_processor = TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                            special_tokens=[(BOS, bpe.token_to_id(BOS))])
    wrap: Any = PreTrainedTokenizerFast
    tokenizer = wrap(
        tokenizer_object=bpe._tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=list(MARKERS), padding_side="left",
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
    )
    tokenizer.save_pretrained(target)


def _unprintable_ids(tokenizer: Any) -> list[int]:
    """Ids an untrained model should not emit: pieces of a UTF-8 character, control characters other
    than a newline, and the markers other than ``<extra_id_1>`` (which ends a turn)."""
    banned = [SPECIAL_IDS[BOS], SPECIAL_IDS[PAD], SPECIAL_IDS["<extra_id_0>"], SPECIAL_IDS["<extra_id_2>"]]
    for index in range(len(SPECIAL_TOKENS), len(tokenizer)):
        text = tokenizer.decode([index])
        if "\ufffd" in text or any(ch != "\n" and not ch.isprintable() for ch in text):
            banned.append(index)
    return banned


def _build_model(target: Path) -> None:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**MODEL_CONFIG, bos_token_id=SPECIAL_IDS[BOS], eos_token_id=SPECIAL_IDS[EOS],
                         pad_token_id=SPECIAL_IDS[PAD])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
    generation: Any = GenerationConfig
    model.generation_config = generation(
        bos_token_id=config.bos_token_id, eos_token_id=[config.eos_token_id, SPECIAL_IDS[END_OF_TURN]],
        pad_token_id=config.pad_token_id, suppress_tokens=_unprintable_ids(tokenizer),
    )
    model.save_pretrained(target)


def build_tiny_model(target: str | os.PathLike[str]) -> Path:
    """Build the checkpoint into `target` (an empty or missing directory); returns its path."""
    quiet_transformers()
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    _build_tokenizer(path)
    _build_model(path)
    files = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.iterdir()) if f.is_file()}
    manifest = {"recipe": recipe_hash(), "files": files}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def ensure_tiny_model(root: str | os.PathLike[str] | None = None) -> Path:
    """The cached tiny checkpoint, built first when missing (atomically: temp dir, then rename)."""
    base = Path(root) if root is not None else cache_root()
    return build_once(base / f"tiny-llama-{recipe_hash()}", MANIFEST, build_tiny_model)
