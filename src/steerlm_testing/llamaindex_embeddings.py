"""`HashingEmbedding`: the kit's hashed bag-of-words stand-in as a LlamaIndex ``BaseEmbedding``."""

from __future__ import annotations

from llama_index.core.base.embeddings.base import BaseEmbedding

from steerlm_testing.embeddings import DIMENSIONS, embed

__all__ = ["HashingEmbedding"]


class HashingEmbedding(BaseEmbedding):
    """Deterministic local embeddings for samples and tests — a stand-in, not a trained model.

    Ranks texts by the content words they share (`steerlm_testing.embeddings`); needs no download
    and no server (LlamaIndex's default embedding would need the OpenAI package and a key).

    Example:
        .. code-block:: python

            from llama_index.core import Settings
            from steerlm_testing.llamaindex_embeddings import HashingEmbedding

            Settings.embed_model = HashingEmbedding()
    """

    dimensions: int = DIMENSIONS
    model_name: str = "steerlm-hashing-bag-of-words"

    @classmethod
    def class_name(cls) -> str:
        return "HashingEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return embed(query, self.dimensions)

    def _get_text_embedding(self, text: str) -> list[float]:
        return embed(text, self.dimensions)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return embed(query, self.dimensions)
