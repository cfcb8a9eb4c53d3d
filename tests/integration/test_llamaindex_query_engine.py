"""Query engines over a VectorStoreIndex with SteerLM: the closed-QA template on the wire.

A small deterministic hashing embedding (bag of words, CRC32 buckets) retrieves from three documents;
`as_query_engine(llm=SteerLM(...))` answers in compact, refine and streaming modes, sync and async,
and the request log of the local Triton server shows the exact prompts the model received.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.schema import MetadataMode

from llamaindex_steerlm import SteerLM, closed_qa_templates
from llamaindex_steerlm.prompts import REFINE_QUESTION
from steerlm import format_prompt
from steerlm.prompts import CLOSED_QA_INSTRUCTION, closed_qa_text
from steerlm_testing import LocalServer

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
ANSWER = "It stands in Paris."
QUERY = f"[[say={ANSWER}]] Where does the Eiffel Tower stand?"
DOCUMENTS = [
    "The Eiffel Tower stands in Paris, the capital of France.",
    "The Colosseum is an ancient amphitheatre in Rome.",
    "Mount Fuji is the highest mountain in Japan.",
]


class HashingEmbedding(BaseEmbedding):
    """Deterministic bag-of-words embedding: word counts hashed into 64 buckets, L2-normalised."""

    dimensions: int = 64

    @classmethod
    def class_name(cls) -> str:
        return "HashingEmbedding"

    def _vector(self, text: str) -> Embedding:
        vector = [0.0] * self.dimensions
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[zlib.crc32(word.encode()) % self.dimensions] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._vector(query)


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    previous = Settings._embed_model
    Settings.embed_model = HashingEmbedding()
    try:
        yield VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS])
    finally:
        Settings._embed_model = previous


def make_llm(server: LocalServer, *, streaming: bool = False, **kwargs: Any) -> SteerLM:
    return SteerLM(model=STREAMING if streaming else CHAT, profile=CHAT, url=server.grpc_url, max_tokens=64,
                   max_retries=0, **kwargs)


async def ask(engine: Any, mode: str) -> tuple[str, list[Any]]:
    """The answer text and the source nodes, for a sync or async query (streaming or not)."""
    response = engine.query(QUERY) if mode == "sync" else await engine.aquery(QUERY)
    if hasattr(response, "async_response_gen"):
        text = "".join([t async for t in response.async_response_gen()])
    elif hasattr(response, "response_gen"):
        text = "".join(response.response_gen)
    else:
        text = str(response.response)
    return text, response.source_nodes


def prompts(server: LocalServer, model: str = CHAT) -> list[str]:
    return [entry["inputs"]["prompts"]["data"][0] for entry in server.requests(model)]


def node_text(node: Any) -> str:
    return str(node.node.get_content(metadata_mode=MetadataMode.LLM)).strip()


def closed_qa_prompt(context: str) -> str:
    return format_prompt([{"role": "user", "content": QUERY}], profile=CHAT, context=context)


SYNC_ASYNC = pytest.mark.parametrize("mode", ["sync", "async"])


@SYNC_ASYNC
async def test_compact_mode_sends_one_closed_qa_prompt(server: LocalServer, index: VectorStoreIndex,
                                                       mode: str) -> None:
    engine = index.as_query_engine(llm=make_llm(server), similarity_top_k=2, response_mode="compact")
    answer, sources = await ask(engine, mode)
    assert answer == ANSWER
    assert node_text(sources[0]) == DOCUMENTS[0]  # the hashing embedding retrieves the right document
    context = "\n\n".join(node_text(n) for n in sources)
    assert prompts(server) == [closed_qa_prompt(context)]
    wire = prompts(server)[0]
    assert f"<extra_id_1>User\n{CLOSED_QA_INSTRUCTION}\nContext: {DOCUMENTS[0]}\n\n" in wire
    assert f"\nPlease give a full and complete answer for the question. {QUERY}\n<extra_id_1>Assistant\n" in wire


@SYNC_ASYNC
async def test_refine_mode_sends_closed_qa_then_closed_qa_refine(server: LocalServer, index: VectorStoreIndex,
                                                                 mode: str) -> None:
    engine = index.as_query_engine(llm=make_llm(server), similarity_top_k=2, response_mode="refine")
    answer, sources = await ask(engine, mode)
    assert answer == ANSWER
    first, second = (node_text(n) for n in sources)
    refine = format_prompt(
        [{"role": "user", "content": QUERY}, {"role": "assistant", "content": ANSWER},
         {"role": "user", "content": closed_qa_text(second, REFINE_QUESTION.format(query_str=QUERY))}],
        profile=CHAT)
    assert prompts(server) == [closed_qa_prompt(first), refine]


@SYNC_ASYNC
async def test_streaming_mode_streams_the_closed_qa_answer(server: LocalServer, index: VectorStoreIndex,
                                                           mode: str) -> None:
    engine = index.as_query_engine(llm=make_llm(server, streaming=True), similarity_top_k=2, streaming=True)
    answer, sources = await ask(engine, mode)
    assert answer == ANSWER
    context = "\n\n".join(node_text(n) for n in sources)
    assert prompts(server, STREAMING) == [closed_qa_prompt(context)]


async def test_explicit_templates_give_the_same_prompt_and_the_swap_can_be_turned_off(
        server: LocalServer, index: VectorStoreIndex) -> None:
    explicit = index.as_query_engine(llm=make_llm(server, closed_qa=False), similarity_top_k=2,
                                     **closed_qa_templates())
    answer, sources = await ask(explicit, "sync")
    assert answer == ANSWER
    assert prompts(server) == [closed_qa_prompt("\n\n".join(node_text(n) for n in sources))]
    server.clear_log()
    default = index.as_query_engine(llm=make_llm(server, closed_qa=False), similarity_top_k=2)
    await ask(default, "async")
    assert "Context information is below." in prompts(server)[0]
    assert CLOSED_QA_INSTRUCTION not in prompts(server)[0]
