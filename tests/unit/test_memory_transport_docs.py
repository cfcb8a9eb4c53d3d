"""The examples of docs/testing-without-a-server.md, run as written (both adapters and the core client
against `MemoryTransport`, no server)."""

from __future__ import annotations

import pytest

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from steerlm import SteerLMClient, StreamInterruptedError
from steerlm.transport import MemoryTransport

CHAT = "Llama2-70B-SteerLM-Chat"


def test_a_langchain_chain_without_a_server() -> None:
    transport = MemoryTransport(lambda request: "Paris")
    chat = ChatSteerLM(model=CHAT, max_tokens=64, verbosity=1, client_kwargs={"transport": transport})
    assert chat.invoke("Capital of France?").content == "Paris"
    sent = transport.requests[-1]
    assert "<extra_id_1>User\nCapital of France?" in sent.prompt and "verbosity:1" in sent.prompt
    assert sent.inputs["max_output_len"] == 64


async def test_a_llamaindex_llm_without_a_server() -> None:
    transport = MemoryTransport(lambda request: ["Par", "is"], streaming=True)
    llm = SteerLM(model=CHAT, client_kwargs={"transport": transport})
    assert (await llm.acomplete("Capital of France?")).text == "Paris"
    chunks = [c.delta async for c in await llm.astream_complete("again")]
    assert "".join(chunks) == "Paris" and len(transport.requests) == 2


def test_the_core_client_examples() -> None:
    client = SteerLMClient(CHAT, transport=MemoryTransport(lambda r: f"echo: {r.prompt}"))
    assert client.generate("hi").text == "echo: hi"
    transport = MemoryTransport(lambda r: "ok").overload(2, retry_after=0.01)
    assert SteerLMClient(CHAT, transport=transport).generate("q").text == "ok"
    transport = MemoryTransport(lambda r: ["one ", "two ", "three"], streaming=True).fail_after(2)
    with pytest.raises(StreamInterruptedError) as info:
        list(SteerLMClient(CHAT, transport=transport).stream("q"))
    assert info.value.partial_text == "one two "
    transport = MemoryTransport(lambda r: r.url).refuse(100, url="grpc://a:1")
    client = SteerLMClient(CHAT, ["grpc://a:1", "grpc://b:1"], transport=transport)
    assert client.generate("q").text == "grpc://b:1"
