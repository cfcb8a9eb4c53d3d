"""Token-by-token decoding for the Hugging Face backend.

* `Sampling` turns NeMo's sampling inputs into a decoding rule (greedy or seeded sampling);
* `TokenLoop` runs a batch of left-padded prompts through a causal LM with a KV cache, one token per
  row per `step()`: no threads, nothing to leak, and it ends when the caller stops calling it;
* `Detokenizer` turns one row's token ids into text incrementally, holding back an incomplete UTF-8
  character, so every text it reports is a prefix of the next one (clients diff cumulative texts).

Every forward pass runs under ``torch.inference_mode()`` inside `step()` itself, because a streaming
generator may be resumed on a different worker thread each time.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from steerlm.serve.backend import SamplingRequest

__all__ = ["Detokenizer", "LogitsProcessor", "Sampling", "TokenLoop", "left_pad"]

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(sequences [B, L], scores [B, V]) -> scores``, as in ``transformers`` (which provides many)."""


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen.

    Greedy follows NeMo / TensorRT-LLM: ``top_k == 1``, or ``temperature == 0``, or neither top-k nor
    top-p set (``top_k == 0 and top_p == 0``). Otherwise tokens are sampled after temperature, top-k
    (when ``top_k > 1``) and top-p (when ``0 < top_p < 1``), from a torch generator seeded with `seed`
    (a random seed when None), so a seeded request is reproducible.
    """

    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    seed: int | None = None

    @classmethod
    def from_request(cls, params: SamplingRequest) -> Sampling:
        greedy = params.top_k == 1 or params.temperature <= 0 or (params.top_k <= 0 and params.top_p <= 0)
        return cls(greedy=greedy, temperature=params.temperature, top_k=max(params.top_k, 0),
                   top_p=params.top_p, seed=params.seed)

    def warpers(self) -> list[LogitsProcessor]:
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        if self.greedy:
            return []
        warpers: list[LogitsProcessor] = []
        if self.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(self.temperature))
        if self.top_k > 1:
            warpers.append(TopKLogitsWarper(self.top_k))
        if 0.0 < self.top_p < 1.0:
            warpers.append(TopPLogitsWarper(self.top_p))
        return warpers

    def generator(self, device: torch.device) -> torch.Generator | None:
        if self.greedy:
            return None
        seed = self.seed if self.seed is not None else secrets.randbits(63)
        return torch.Generator(device=device).manual_seed(seed)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` of `rows`, padded on the left to the longest row."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if row:
            ids[index, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[index, width - len(row):] = 1
    return ids, mask


class TokenLoop:
    """Batched decoding with a KV cache; each `step()` returns the next token id of every row.

    `banned` ids are never chosen (padding, BOS, ids past the tokenizer's vocabulary); rows marked
    finished get `pad_id` fed back and their choice is ignored by the caller.
    """

    def __init__(
        self,
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        sampling: Sampling,
        pad_id: int,
        banned: Collection[int] = (),
        processors: Sequence[LogitsProcessor] = (),
    ) -> None:
        self._model = model
        self._device = model.device
        self.sequences = input_ids.to(self._device)
        self._mask = attention_mask.to(self._device)
        self._positions = (self._mask.cumsum(-1) - 1).clamp(min=0)
        self._pending = self.sequences
        self._cache: Any = None
        self._pad = pad_id
        self._sampling = sampling
        self._processors = [*processors, *sampling.warpers()]
        self._generator = sampling.generator(self._device)
        self._banned = torch.tensor(sorted(set(banned)), dtype=torch.long, device=self._device)
        self.prompt_length = int(input_ids.shape[1])

    @torch.inference_mode()
    def step(self, finished: Sequence[bool] = ()) -> list[int]:
        out = self._model(input_ids=self._pending, attention_mask=self._mask, position_ids=self._positions,
                          past_key_values=self._cache, use_cache=True, logits_to_keep=1)
        self._cache = out.past_key_values
        scores = out.logits[:, -1, :].float()
        if self._banned.numel():
            scores.index_fill_(1, self._banned, float("-inf"))
        for processor in self._processors:
            scores = processor(self.sequences, scores)
        if self._sampling.greedy:
            tokens = scores.argmax(dim=-1)
        else:
            probs = torch.softmax(scores, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=self._generator).squeeze(1)
        if finished:
            done = torch.tensor(list(finished), dtype=torch.bool, device=self._device)
            tokens = torch.where(done, torch.full_like(tokens, self._pad), tokens)
        self._pending = tokens[:, None]
        self.sequences = torch.cat([self.sequences, self._pending], dim=1)
        self._mask = torch.cat([self._mask, torch.ones_like(self._pending)], dim=1)
        self._positions = self._positions[:, -1:] + 1
        return [int(token) for token in tokens.tolist()]


class Detokenizer:
    """The text of one row's generated ids, grown one token at a time (the prompt is not included).

    Each new piece is decoded with a few preceding ids as context (tokenizers such as SentencePiece
    render a token differently at the start of a text) and held back while it ends in an incomplete
    character (``U+FFFD``); `flush` releases whatever is still held back.
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self.ids: list[int] = []
        self.text = ""
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> None:
        self.ids.append(token_id)
        self._advance(final=False)

    def flush(self) -> None:
        self._advance(final=True)

    def _advance(self, *, final: bool) -> None:
        if self._read == len(self.ids):
            return
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        if len(after) > len(before) and (final or not after.endswith("\ufffd")):
            self.text += after[len(before):]
            self._prefix, self._read = self._read, len(self.ids)
