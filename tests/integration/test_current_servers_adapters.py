"""ChatSteerLM and LlamaIndex SteerLM against the local reproductions of NeMo Export-Deploy's deployables
(Megatron, Hugging Face, vLLM exporter) and Triton's vLLM backend: invoke, stream, async and batch, with the
exact SteerLM prompt on the wire (request log), the answer cut at ``<extra_id_1>`` (client side for
Export-Deploy, server side for vLLM) and token usage from the server with no tokenizer configured."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from steerlm.prompts import format_prompt
from steerlm_testing import LocalServer
from steerlm_testing.directives import tokenize

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
MODELS = ("megatron-deployable", "hf-deployable", "vllm-exporter", "vllm_model")
VLLM = "vllm_model"
MODES = ("invoke", "ainvoke", "stream", "astream")


def say(text: str) -> str:
    return f"[[say={text}\\n\\u003cextra_id_1>User\\nmore]]"


def wire_prompt(user: str) -> str:
    return format_prompt([{"role": "user", "content": user}], profile=PROFILE)


def sent_prompts(server: LocalServer, model: str) -> list[str]:
    field = "text_input" if model == VLLM else "prompts"
    return [p for entry in server.requests(model) for p in entry["inputs"][field]["data"]]


def expected_usage(model: str, user: str, answer: str) -> dict[str, int] | None:
    """The vLLM backend counts tokens (prompt words; generated tokens through the end-of-turn marker)."""
    if model != VLLM:
        return None
    given, made = len(wire_prompt(user).split()), len(tokenize(answer + "\n<extra_id_1>"))
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


@pytest.fixture
def server(current_server: LocalServer) -> LocalServer:
    return current_server


async def _lc_call(chat: ChatSteerLM, mode: str, messages: list[Any]) -> AIMessage:
    if mode == "invoke":
        return chat.invoke(messages)  # type: ignore[return-value]
    if mode == "ainvoke":
        return await chat.ainvoke(messages)  # type: ignore[return-value]
    chunks = list(chat.stream(messages)) if mode == "stream" else [c async for c in chat.astream(messages)]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return AIMessage(content=total.content, response_metadata=total.response_metadata,
                     usage_metadata=total.usage_metadata)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_chatsteerlm_each_server(server: LocalServer, model: str, mode: str) -> None:
    chat = ChatSteerLM(model=model, profile=PROFILE, url=server.grpc_url, max_retries=0)
    user = say("Here it is.")
    reply = asyncio.run(_lc_call(chat, mode, [HumanMessage(user)]))
    assert reply.content == "Here it is."
    assert reply.response_metadata["finish_reason"] == "stop"
    assert sent_prompts(server, model) == [wire_prompt(user)]
    assert reply.usage_metadata == expected_usage(model, user, "Here it is.")  # no tokenizer configured


@pytest.mark.parametrize("model", MODELS)
def test_chatsteerlm_batch(server: LocalServer, model: str) -> None:
    chat = ChatSteerLM(model=model, profile=PROFILE, url=server.http_url, max_retries=0)
    users = [say(f"Answer {i}.") for i in range(3)]
    replies = chat.batch([[HumanMessage(u)] for u in users])
    assert [r.content for r in replies] == [f"Answer {i}." for i in range(3)]
    assert sorted(sent_prompts(server, model)) == sorted(wire_prompt(u) for u in users)
    assert [r.usage_metadata for r in replies] == [expected_usage(model, u, f"Answer {i}.")
                                                   for i, u in enumerate(users)]
    logged = server.requests(model)
    assert len(logged) == (3 if model == VLLM else 1)  # vLLM: one prompt per request; else one batched request


async def _li_chat(llm: SteerLM, mode: str, messages: list[ChatMessage]) -> Any:
    if mode == "invoke":
        return llm.chat(messages)
    if mode == "ainvoke":
        return await llm.achat(messages)
    if mode == "stream":
        return list(llm.stream_chat(messages))[-1]
    return [r async for r in await llm.astream_chat(messages)][-1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
def test_llamaindex_each_server(server: LocalServer, model: str, mode: str) -> None:
    llm = SteerLM(model=model, profile=PROFILE, url=server.grpc_url, max_retries=0)
    user = say("Here it is.")
    response = asyncio.run(_li_chat(llm, mode, [ChatMessage(role="user", content=user)]))
    assert response.message.content == "Here it is."
    assert response.additional_kwargs["finish_reason"] == "stop"
    assert sent_prompts(server, model) == [wire_prompt(user)]
    usage = expected_usage(model, user, "Here it is.")
    if usage is None:
        assert "prompt_tokens" not in response.additional_kwargs
    else:
        assert response.raw["usage"] == {"prompt_tokens": usage["input_tokens"],
                                         "completion_tokens": usage["output_tokens"],
                                         "total_tokens": usage["total_tokens"]}
        assert response.additional_kwargs["completion_tokens"] == usage["output_tokens"]


@pytest.mark.parametrize("model", MODELS)
def test_llamaindex_complete_batch_of_prompts_concurrently(server: LocalServer, model: str) -> None:
    llm = SteerLM(model=model, profile=PROFILE, url=server.http_url, max_retries=0)
    users = [say(f"Answer {i}.") for i in range(3)]

    async def run() -> list[Any]:
        return list(await asyncio.gather(*(llm.acomplete(u) for u in users)))

    responses = asyncio.run(run())
    assert [r.text for r in responses] == [f"Answer {i}." for i in range(3)]
    assert sorted(sent_prompts(server, model)) == sorted(wire_prompt(u) for u in users)


def test_langchain_llm_usage_and_streamed_chunks_from_the_vllm_backend(server: LocalServer) -> None:
    """The completion-style `SteerLM` too: usage from the server, per generation and summed for the batch."""
    from langchain_steerlm import SteerLM as LangChainSteerLM

    llm = LangChainSteerLM(model=VLLM, profile=PROFILE, url=server.grpc_url, max_retries=0)
    users = [say("One."), say("Two words.")]
    result = llm.generate(users)
    infos = [g[0].generation_info for g in result.generations]
    expected = [expected_usage(VLLM, u, a) for u, a in zip(users, ("One.", "Two words."), strict=True)]
    assert [g[0].text for g in result.generations] == ["One.", "Two words."]
    assert [i["usage_metadata"] for i in infos if i] == expected
    assert result.llm_output is not None and result.llm_output["token_usage"] == {
        key: sum(u[key] for u in expected if u) for key in ("input_tokens", "output_tokens", "total_tokens")}
    chunks = list(llm.stream(say("alpha beta gamma delta")))
    assert len([c for c in chunks if c]) > 1 and "".join(chunks) == "alpha beta gamma delta"


def test_server_counts_win_over_a_configured_tokenizer(server: LocalServer, tmp_path: Any) -> None:
    """A local tokenizer stays an option (it also guards the context window), but the server's counts are used."""
    from tokenizers import ByteLevelBPETokenizer

    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator(["one two three here it is"] * 10, vocab_size=300, min_frequency=1,
                                show_progress=False)
    trained.save(str(tmp_path / "tokenizer.json"))
    user = say("Here it is.")
    for model in (VLLM, "megatron-deployable"):
        chat = ChatSteerLM(model=model, profile=PROFILE, url=server.grpc_url, max_retries=0,
                           tokenizer=str(tmp_path / "tokenizer.json"))
        reply = chat.invoke(user)
        assert reply.usage_metadata is not None
        local_output = chat.get_num_tokens("Here it is.")
        if model == VLLM:
            assert reply.usage_metadata == expected_usage(model, user, "Here it is.")
            assert reply.usage_metadata["input_tokens"] != chat.get_num_tokens(wire_prompt(user))  # not local
        else:  # Export-Deploy reports no counts: the tokenizer's are used
            assert reply.usage_metadata["output_tokens"] == local_output
