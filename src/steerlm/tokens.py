"""Framework-neutral token counting and the context-window guard.

Triton returns no token counts, so adapters that report usage (LangChain's ``usage_metadata``,
LlamaIndex's ``raw`` usage) count tokens client side with the model's own tokenizer:

* ``load_token_counter("path/to/tokenizer.json")`` or a Hugging Face tokenizer directory (one that holds
  ``tokenizer.json``; directories with only a SentencePiece ``tokenizer.model`` load through
  ``transformers`` when it is installed). Nothing is downloaded: the path must exist locally.
* any tokenizer object with ``encode(text, add_special_tokens=...)`` — a ``tokenizers.Tokenizer`` or a
  ``transformers`` tokenizer — is accepted as it is.

`check_context_window` raises `ContextWindowExceededError` when the prompt plus the requested output
does not fit the profile's window; `guard_prompt` counts and checks in one step.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from steerlm.errors import ConfigurationError, ContextWindowExceededError
from steerlm.profiles import ModelProfile

__all__ = ["TokenCounter", "check_context_window", "guard_prompt", "load_token_counter"]

TokenizerSource = str | os.PathLike[str] | Any


class TokenCounter:
    """Counts tokens with a tokenizer object; `source` names where it came from (for messages)."""

    def __init__(self, tokenizer: Any, *, source: str | None = None) -> None:
        if not callable(getattr(tokenizer, "encode", None)):
            raise ConfigurationError(
                f"tokenizer {tokenizer!r} has no encode() method; pass a path to tokenizer.json, a "
                "Hugging Face tokenizer directory, or a tokenizers/transformers tokenizer object"
            )
        self.tokenizer = tokenizer
        self.source = source or type(tokenizer).__name__

    def ids(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """The token ids of `text`."""
        if not text:
            return []
        encoded = self.tokenizer.encode(text, add_special_tokens=add_special_tokens)
        return [int(i) for i in getattr(encoded, "ids", encoded)]

    def count(self, text: str, *, add_special_tokens: bool = False) -> int:
        """The number of tokens in `text`. Prompts are counted with the special tokens the server's
        tokenizer adds (``add_special_tokens=True``, e.g. BOS); completions without."""
        return len(self.ids(text, add_special_tokens=add_special_tokens))

    def __repr__(self) -> str:
        return f"TokenCounter(source={self.source!r})"


_CACHE: dict[str, TokenCounter] = {}
_LOCK = threading.Lock()


def _load_path(path: Path) -> TokenCounter:
    from tokenizers import Tokenizer

    if path.is_file():
        return TokenCounter(Tokenizer.from_file(str(path)), source=str(path))
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return TokenCounter(Tokenizer.from_file(str(path / "tokenizer.json")), source=str(path))
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise ConfigurationError(
                f"tokenizer directory {str(path)!r} has no tokenizer.json; add one, or install "
                "transformers to load other tokenizer formats"
            ) from None
        loaded = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return TokenCounter(loaded, source=str(path))
    raise ConfigurationError(
        f"tokenizer path {str(path)!r} does not exist; pass a local tokenizer.json file or a Hugging Face "
        "tokenizer directory (nothing is downloaded)"
    )


def load_token_counter(source: TokenizerSource) -> TokenCounter:
    """A `TokenCounter` for a path (cached per resolved path), a tokenizer object, or a TokenCounter."""
    if isinstance(source, TokenCounter):
        return source
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        key = str(path.resolve())
        with _LOCK:
            counter = _CACHE.get(key)
        if counter is None:
            counter = _load_path(path)
            with _LOCK:
                counter = _CACHE.setdefault(key, counter)
        return counter
    return TokenCounter(source)


def check_context_window(
    prompt_tokens: int,
    max_tokens: int | None,
    context_window: int | ModelProfile,
    *,
    model: str | None = None,
) -> None:
    """Raise ContextWindowExceededError when ``prompt_tokens + max_tokens`` exceeds the window.

    `max_tokens=None` (the server's default output length) checks the prompt alone.
    """
    limit = context_window.context_window if isinstance(context_window, ModelProfile) else context_window
    name = model or (context_window.name if isinstance(context_window, ModelProfile) else "the model")
    wanted = prompt_tokens + (max_tokens or 0)
    if wanted <= limit and prompt_tokens < limit:
        return
    output = f" + max_tokens {max_tokens}" if max_tokens else ""
    raise ContextWindowExceededError(
        f"the prompt has {prompt_tokens} tokens{output} = {wanted}, more than the {limit}-token context "
        f"window of {name}; shorten the conversation or lower max_tokens",
        prompt_tokens=prompt_tokens,
        limit=limit,
    )


def guard_prompt(
    counter: TokenCounter,
    prompt: str,
    max_tokens: int | None,
    profile: ModelProfile,
    *,
    model: str | None = None,
) -> int:
    """Count the prompt's tokens, check them against the profile's window, and return the count."""
    tokens = counter.count(prompt, add_special_tokens=True)
    check_context_window(tokens, max_tokens, profile, model=model)
    return tokens
