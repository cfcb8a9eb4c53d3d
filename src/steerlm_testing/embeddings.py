"""A local, deterministic stand-in for a real embedding model: hashed bag of words.

For samples and tests that need retrieval without downloading or serving an embedding model. Each
lower-cased word (stop words and words of one or two letters dropped, a trailing ``s`` removed) is
hashed into one of `DIMENSIONS` buckets; the vector is L2-normalised, so cosine similarity counts the
content words two texts share. It ranks documents by word overlap — enough to retrieve the right
document for a question that uses its words, nothing like a trained model's notion of meaning. Use a
real embedding model (NVIDIA NIM embeddings, sentence-transformers, ...) in an application.

The framework classes wrap `embed`: `steerlm_testing.langchain_embeddings.HashingEmbeddings`
(LangChain) and `steerlm_testing.llamaindex_embeddings.HashingEmbedding` (LlamaIndex).
"""

from __future__ import annotations

import hashlib
import math
import re

__all__ = ["DIMENSIONS", "embed", "words"]

DIMENSIONS = 256
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset((
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out",
    "has", "him", "his", "how", "its", "may", "new", "now", "see", "two", "who", "did", "get", "let", "put", "say",
    "she", "too", "use", "what", "when", "where", "which", "why", "with", "does", "from", "that", "this", "into",
    "than", "then", "them", "they", "their", "there", "these", "those", "will", "would", "about", "also", "been",
    "were", "have", "each", "more", "some", "such", "only", "over", "your",
))


def words(text: str) -> list[str]:
    """The content words of `text` as `embed` counts them."""
    found = (w.removesuffix("s") if len(w) > 3 else w for w in _WORD.findall(text.lower()))
    return [w for w in found if len(w) > 2 and w not in _STOP]


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The hashed bag-of-words vector of `text` (unit length; all zeros for a text with no content word)."""
    vector = [0.0] * dimensions
    for word in words(text):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest[:4], "little") % dimensions] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector
