"""Log-probabilities in LangChain's shapes (pure).

* chat models: ChatOpenAI's ``response_metadata["logprobs"]`` —
  ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}, ...]}, ...]}``;
  a stream's chunks each carry the entries that arrived with them, so the merged chunk holds them all
  (langchain-core concatenates the ``content`` lists, as for ChatOpenAI's stream);
* string LLMs: the legacy completions shape of OpenAI's LLM, ``generation_info["logprobs"]`` —
  ``{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}, ...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steerlm.logprobs import TokenLogprob

__all__ = ["chat_logprobs", "chunk_logprobs", "completion_logprobs"]


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    """ChatOpenAI's ``logprobs`` object for `entries`."""
    return {"content": [{**_entry(e.token, e.logprob), "top_logprobs": [_entry(t, v) for t, v in e.top]}
                        for e in entries]}


def completion_logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    """OpenAI's legacy completions ``logprobs`` object for `entries`."""
    return {"tokens": [e.token for e in entries], "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [dict(e.top) for e in entries]}


def chunk_logprobs(info: Mapping[str, Any] | None) -> list[TokenLogprob]:
    """The entries a string-LLM chunk's ``generation_info`` carries (`completion_logprobs` read back)."""
    given = (info or {}).get("logprobs")
    if not isinstance(given, Mapping):
        return []
    tops = given.get("top_logprobs") or []
    return [TokenLogprob(str(t), float(v), tuple(sorted(dict(tops[i]).items(), key=lambda p: -p[1]))
                         if i < len(tops) else ())
            for i, (t, v) in enumerate(zip(given.get("tokens") or [], given.get("token_logprobs") or [], strict=False))]
