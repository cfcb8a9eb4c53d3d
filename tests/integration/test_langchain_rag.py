"""End-to-end closed-QA RAG: a real InMemoryVectorStore, the chain, the real local Triton server, and
the exact prompt the server received (request log)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.output_parsers import StrOutputParser
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_steerlm import ChatSteerLM, SteerLM, closed_qa_chain, with_context
from steerlm.profiles import STEERLM_SYSTEM_PROMPT

DOCUMENTS = [
    "Triton Inference Server serves models over HTTP and gRPC.",
    "SteerLM conditions each answer on attribute labels such as verbosity.",
    "The NeMo deploy signature takes prompts and max_output_len.",
    "Paris is the capital of France.",
]
QUESTION = "What does SteerLM condition answers on? [[say=On attribute labels.]]"
INSTRUCTION = (
    "This is a chat between a user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions based on the context. The assistant should also "
    "indicate when the answer cannot be found in the context."
)
LABELS = ("quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4,"
          "verbosity:1")


@pytest.fixture(scope="module")
def retriever() -> Any:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=64))
    store.add_documents([Document(page_content=text) for text in DOCUMENTS])
    return store.as_retriever(search_kwargs={"k": 2})


def expected_context(retriever: Any) -> str:
    found = retriever.invoke(QUESTION)
    assert len(found) == 2
    return f"{found[0].page_content}\n\n{found[1].page_content}"


def last_prompt(server: Any, model: str) -> str:
    return str(server.last_request(model)["inputs"]["prompts"]["data"][0])


@pytest.mark.parametrize("async_api", [False, True])
def test_chat_rag_chain_sends_the_closed_qa_prompt(server: Any, retriever: Any, async_api: bool) -> None:
    model = ChatSteerLM(model="Llama2-70B-SteerLM-Chat", url=server.grpc_url, verbosity=1)
    chain = closed_qa_chain(retriever, model) | StrOutputParser()
    answer = asyncio.run(chain.ainvoke(QUESTION)) if async_api else chain.invoke(QUESTION)
    assert answer == "On attribute labels."
    assert last_prompt(server, "Llama2-70B-SteerLM-Chat") == (
        f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n"
        f"<extra_id_1>User\n{INSTRUCTION}\nContext: {expected_context(retriever)}\n"
        f"Please give a full and complete answer for the question. {QUESTION}\n"
        f"<extra_id_1>Assistant\n<extra_id_2>{LABELS}\n"
    )


def test_card_closed_qa_template_with_the_string_llm(server: Any, retriever: Any) -> None:
    llm = SteerLM(model="nemo-v2.0", profile="NV-Llama2-70B-RLHF-Chat", url=server.http_url)
    assert closed_qa_chain(retriever, llm).invoke({"question": QUESTION}) == "On attribute labels."
    # seeds/002: the instruction goes inside the User turn after an empty system.
    assert last_prompt(server, "nemo-v2.0") == (
        f"<extra_id_0>System\n\n<extra_id_1>User\n{INSTRUCTION}\nContext: {expected_context(retriever)}\n"
        f"Please give a full and complete answer for the question. {QUESTION}\n<extra_id_1>Assistant\n"
    )


def test_rag_chain_streams(server: Any, retriever: Any) -> None:
    model = ChatSteerLM(model="Llama2-70B-SteerLM-Chat-streaming", profile="Llama2-70B-SteerLM-Chat",
                        url=server.grpc_url)
    pieces = [c.content for c in closed_qa_chain(retriever, model).stream(QUESTION)]
    assert [p for p in pieces if p] == ["On ", "attribute ", "labels."]
    assert f"Context: {expected_context(retriever)}\n" in last_prompt(server, "Llama2-70B-SteerLM-Chat-streaming")


def test_context_per_call_and_with_context(server: Any) -> None:
    model = ChatSteerLM(model="Llama2-70B-SteerLM-Chat", url=server.grpc_url, max_tokens=2)
    model.invoke("Q?", context="C1")
    assert "\nContext: C1\nPlease give a full and complete answer for the question. Q?\n" in last_prompt(
        server, "Llama2-70B-SteerLM-Chat")
    with_context(model).invoke({"question": "Q2?", "context": [Document(page_content="D1"),
                                                               Document(page_content="D2")]})
    assert "\nContext: D1\n\nD2\nPlease give a full and complete answer for the question. Q2?\n" in last_prompt(
        server, "Llama2-70B-SteerLM-Chat")
