"""A Hugging Face causal LM behind the NeMo deploy signature (``steerlm serve --backend hf``).

`HFBackend` loads a model and tokenizer from a local directory (``--checkpoint DIR``; without one, the
embedded tiny model of `steerlm.serve.tiny_model`), on the GPU in bfloat16 when CUDA is available and
on the CPU in float32 otherwise, and implements the `Backend` contract:

* ``max_tokens`` new tokens at most; greedy or seeded sampling (`hf_stream.Sampling`); ``bad_words``
  and ``no_repeat_ngram_size`` through the ``transformers`` logits processors;
* several prompts are one left-padded batch; ``stream`` yields the cumulative text of every row after
  each generated token, ``generate`` is the same loop run to its end;
* a row ends at its tokenizer's EOS or ``generation_config`` EOS ids (dropped from the text), at the
  ``<extra_id_1>`` end-of-turn token (kept, like the scripted model and TensorRT-LLM), or once its
  decoded text contains a stop word (or ``<extra_id_1>`` spelt in pieces): the text then ends right
  after the first one.

`random_backend` serves random weights of a real architecture's shape (for GPU benchmarks).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Sequence
from typing import Any

import torch

from steerlm.serve.backend import SamplingRequest
from steerlm.serve.hf_stream import Detokenizer, LogitsProcessor, Sampling, TokenLoop, left_pad
from steerlm.serve.tiny_model import END_OF_TURN, MODEL_CONFIG, ensure_tiny_model, quiet_transformers

__all__ = ["SHAPES", "ForceTokenAfter", "HFBackend", "load_pretrained", "random_backend", "resolve_device"]

SHAPES: dict[str, dict[str, Any]] = {
    "llama3-8b": {
        "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 8192,
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
    },
    "tiny": MODEL_CONFIG,  # the embedded model's shape, for smoke runs on a CPU
}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str | None = None, dtype: str | None = None) -> tuple[torch.device, torch.dtype]:
    """``auto`` (or None) means CUDA with bfloat16 when available, else the CPU with float32."""
    cuda = torch.cuda.is_available()
    target = torch.device("cuda" if cuda else "cpu") if device in (None, "", "auto") else torch.device(device)
    if dtype in (None, "", "auto"):
        return target, torch.bfloat16 if target.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, {', '.join(_DTYPES)}")
    return target, _DTYPES[dtype]


def load_pretrained(path: str | os.PathLike[str], device: str | None = None,
                    dtype: str | None = None) -> tuple[Any, Any]:
    """The causal LM (eval mode, on its device) and tokenizer saved in the local directory `path`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    target, torch_dtype = resolve_device(device, dtype)
    tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
    return model.to(target).eval(), tokenizer


class ForceTokenAfter:
    """A logits processor that forces `token_id` once `after` tokens have been generated."""

    def __init__(self, token_id: int, after: int, prompt_length: int) -> None:
        self.token_id, self.after, self.prompt_length = token_id, after, prompt_length

    def __call__(self, sequences: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if sequences.shape[1] - self.prompt_length < self.after:
            return scores
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.token_id] = 0.0
        return forced


class _Row:
    """One prompt's generated text and whether it has ended."""

    def __init__(self, decoder: Detokenizer, stops: tuple[str, ...], *, dropped: frozenset[int],
                 kept: frozenset[int]) -> None:
        self._decoder, self._stops, self._dropped, self._kept = decoder, stops, dropped, kept
        self._cut: int | None = None
        self._checked = 0
        self.done = False

    @property
    def text(self) -> str:
        text = self._decoder.text
        return text if self._cut is None else text[:self._cut]

    def accept(self, token_id: int) -> None:
        if token_id in self._dropped:
            self.finish()
            return
        self._decoder.push(token_id)
        if token_id in self._kept:
            self.finish()
        self._check_stops()

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self._decoder.flush()
            self._check_stops()

    def _check_stops(self) -> None:
        text = self._decoder.text
        ends = [i + len(stop) for stop in self._stops
                if (i := text.find(stop, max(0, self._checked - len(stop) + 1))) >= 0]
        self._checked = len(text)
        if ends and self._cut is None:
            self._cut = min(ends)
            self.done = True


class HFBackend:
    """A `Backend` generating with a Hugging Face causal LM.

    Constructor arguments are the ``--backend-option`` strings of ``steerlm serve``: `model` (a local
    checkpoint directory; default: the embedded tiny model), `device` (``auto``, ``cpu``, ``cuda``,
    ``cuda:1``...), `dtype` (``auto``, ``float32``, ``bfloat16``, ``float16``), `ignore_eos`
    (``true``: never end before ``max_tokens`` except at a stop word, for benchmarks) and, for tests,
    `force_end_of_turn_after` (N: force ``<extra_id_1>`` after N generated tokens).
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, device: str | None = None,
                 dtype: str | None = None, ignore_eos: bool | str = False,
                 force_end_of_turn_after: int | str | None = None) -> None:
        path = model if model else ensure_tiny_model()
        lm, tokenizer = load_pretrained(path, device, dtype)
        self._attach(lm, tokenizer, _flag(ignore_eos), force_end_of_turn_after)

    @classmethod
    def from_objects(cls, model: Any, tokenizer: Any, *, ignore_eos: bool = False,
                     force_end_of_turn_after: int | str | None = None) -> HFBackend:
        """A backend around an already loaded model and tokenizer."""
        backend = cls.__new__(cls)
        backend._attach(model, tokenizer, ignore_eos, force_end_of_turn_after)
        return backend

    def _attach(self, model: Any, tokenizer: Any, ignore_eos: bool, force_after: int | str | None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self._encode_lock = threading.Lock()
        vocab = tokenizer.get_vocab()
        self.end_of_turn_id: int | None = vocab.get(END_OF_TURN)
        configured = getattr(model.generation_config, "eos_token_id", None) or model.config.eos_token_id
        eos = {configured} if isinstance(configured, int) else set(configured or ())
        if tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        kept = {self.end_of_turn_id} if self.end_of_turn_id is not None else set()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos, default=0)
        suppressed = set(getattr(model.generation_config, "suppress_tokens", None) or ())
        if ignore_eos:  # the end tokens become ones that are never chosen
            suppressed |= eos | kept
            eos, kept = set(), set()
        self.dropped_ids = frozenset(eos - kept)
        self.kept_ids = frozenset(kept)
        never = {tokenizer.pad_token_id, tokenizer.bos_token_id, *suppressed} - eos - kept - {None}
        self.banned_ids = frozenset({int(i) for i in never} | set(range(len(tokenizer), model.config.vocab_size)))
        self.max_positions: int | None = getattr(model.config, "max_position_embeddings", None)
        self.force_end_after = int(force_after) if force_after not in (None, "") else None
        if self.force_end_after is not None and self.end_of_turn_id is None:
            raise ValueError(f"force_end_of_turn_after needs a tokenizer with the {END_OF_TURN} token")

    def _decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return text

    def _processors(self, params: SamplingRequest, prompt_length: int) -> list[LogitsProcessor]:
        from transformers import NoBadWordsLogitsProcessor, NoRepeatNGramLogitsProcessor

        processors: list[LogitsProcessor] = []
        bad = [ids for word in params.bad_words if word
               if (ids := self.tokenizer.encode(word, add_special_tokens=False))]
        if bad:
            processors.append(NoBadWordsLogitsProcessor(bad, eos_token_id=sorted(self.dropped_ids | self.kept_ids)))
        ngram = int(float(params.extras.get("no_repeat_ngram_size") or 0))
        if ngram > 0:
            processors.append(NoRepeatNGramLogitsProcessor(ngram))
        if self.force_end_after is not None and self.end_of_turn_id is not None:
            processors.append(ForceTokenAfter(self.end_of_turn_id, self.force_end_after, prompt_length))
        return processors

    def _start(self, prompts: Sequence[str], params: SamplingRequest) -> tuple[TokenLoop, list[_Row]]:
        if params.max_tokens < 1:
            raise ValueError(f"max output length must be at least 1, got {params.max_tokens}")
        with self._encode_lock:
            encoded = [list(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=True)["input_ids"]]
        input_ids, mask = left_pad(encoded, self.pad_id)
        needed = input_ids.shape[1] + params.max_tokens
        if self.max_positions is not None and needed > self.max_positions:
            raise ValueError(f"prompt ({input_ids.shape[1]} tokens) plus max output length "
                             f"({params.max_tokens}) exceeds the model's {self.max_positions} positions")
        loop = TokenLoop(self.model, input_ids, mask, sampling=Sampling.from_request(params), pad_id=self.pad_id,
                         banned=self.banned_ids, processors=self._processors(params, int(input_ids.shape[1])))
        stops = tuple(dict.fromkeys(s for s in (*params.stop_words, END_OF_TURN) if s))
        rows = [_Row(Detokenizer(self._decode), stops, dropped=self.dropped_ids, kept=self.kept_ids)
                for _ in prompts]
        return loop, rows

    def stream(self, prompts: Sequence[str], params: SamplingRequest) -> Generator[list[str], None, None]:
        if not prompts:
            return
        loop, rows = self._start(prompts, params)
        for count in range(1, params.max_tokens + 1):
            tokens = loop.step([row.done for row in rows])
            for row, token in zip(rows, tokens, strict=True):
                if not row.done:
                    row.accept(token)
                if count == params.max_tokens:
                    row.finish()
            yield [row.text for row in rows]
            if all(row.done for row in rows):
                return

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` as the tokenizer encodes a prompt (for signatures that report usage)."""
        with self._encode_lock:
            return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def generate(self, prompts: Sequence[str], params: SamplingRequest) -> list[str]:
        last = [""] * len(prompts)
        for texts in self.stream(prompts, params):
            last = texts
        return last


def _flag(value: bool | str) -> bool:
    return value if isinstance(value, bool) else value.strip().lower() in ("1", "true", "yes", "on")


def random_backend(shape: str = "llama3-8b", layers: int | str | None = None, device: str | None = None,
                   dtype: str | None = None, ignore_eos: bool | str = False,
                   tokenizer: str | os.PathLike[str] | None = None) -> HFBackend:
    """Random weights of a real architecture (`SHAPES`) with the tokenizer of `tokenizer` (a local
    directory; default: the tiny model's); nothing is downloaded. `layers` overrides the number of
    decoder layers (a smaller model of the same width)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    quiet_transformers()
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: use one of {', '.join(SHAPES)}")
    target, torch_dtype = resolve_device(device, dtype)
    loaded: Any = AutoTokenizer.from_pretrained(tokenizer or ensure_tiny_model(), local_files_only=True)
    settings = dict(SHAPES[shape])
    if layers is not None and layers != "":
        settings["num_hidden_layers"] = int(layers)
    config = LlamaConfig(**settings, bos_token_id=loaded.bos_token_id, eos_token_id=loaded.eos_token_id,
                         pad_token_id=loaded.pad_token_id)
    build: Any = LlamaForCausalLM._from_config
    with torch.device(target):
        model = build(config, dtype=torch_dtype)
    return HFBackend.from_objects(model.eval(), loaded, ignore_eos=_flag(ignore_eos))
