"""`HashingEmbeddings`: the kit's hashed bag-of-words stand-in as a LangChain ``Embeddings``."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from steerlm_testing.embeddings import DIMENSIONS, embed

__all__ = ["HashingEmbeddings"]


class HashingEmbeddings(Embeddings):
    """Deterministic local embeddings for samples and tests — a stand-in, not a trained model.

    Ranks texts by the content words they share (`steerlm_testing.embeddings`); needs no download
    and no server.

    Example:
        .. code-block:: python

            from langchain_core.vectorstores import InMemoryVectorStore
            from steerlm_testing.langchain_embeddings import HashingEmbeddings

            store = InMemoryVectorStore.from_texts(["Triton serves models."], HashingEmbeddings())
    """

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed(text, self.dimensions) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed(text, self.dimensions)
