"""ChatSteerLM and LlamaIndex SteerLM against the OpenAI-compatible test double, for what transformers serve
does not do: list prompts, a server that honours ``stop`` (vLLM: the stop string left out, the turn's
newline left in), 400 context length, 401, an unknown model, 429 with Retry-After, and NeMo Ray's
trailing-slash route that ignores ``stop`` and ``stream``. Sync and async for each."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core import exceptions as lc
from llama_index.core.base.llms.types import ChatMessage

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from steerlm import format_prompt
from steerlm.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    ModelNotFoundError,
    ServerOverloadedError,
)
from steerlm.serve.token_stats import token_logprob
from steerlm_testing.directives import tokenize
from steerlm_testing.openai_double import OpenAIDouble

pytestmark = [pytest.mark.timeout(120)]

PROFILE = "Llama2-70B-SteerLM-Chat"
END = "\\u003cextra_id_1>"  # in a [[say=...]] value: the end-of-turn marker
TURN = f"[[say=Hello there.\\n{END}User\\nmore]]"  # the model ends its turn after "Hello there.\n"
MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as server:
        yield server


def chat(double: OpenAIDouble, **kwargs: Any) -> ChatSteerLM:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("model", double.model)
    kwargs.setdefault("client_kwargs", {"ready_timeout": 2.0})
    return ChatSteerLM(url=double.url, profile=PROFILE, max_tokens=32, **kwargs)


def llama(double: OpenAIDouble, **kwargs: Any) -> SteerLM:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("client_kwargs", {"ready_timeout": 2.0})
    return SteerLM(model=double.model, url=double.url, profile=PROFILE, max_tokens=32, **kwargs)


def invoke(model: ChatSteerLM, mode: str, text: str, **kwargs: Any) -> Any:
    return model.invoke(text, **kwargs) if mode == "sync" else asyncio.run(model.ainvoke(text, **kwargs))


def complete(llm: SteerLM, mode: str, text: str, **kwargs: Any) -> Any:
    return llm.complete(text, **kwargs) if mode == "sync" else asyncio.run(llm.acomplete(text, **kwargs))


def rendered(text: str) -> str:
    return format_prompt([{"role": "user", "content": text}], profile=PROFILE)


@MODES
def test_the_exact_prompt_and_fields_go_to_v1_completions(double: OpenAIDouble, mode: str) -> None:
    reply = invoke(chat(double, temperature=0.5, seed=7), mode, "[[say=Fine.]]", stop=["###"])
    assert reply.content == "Fine."
    body = double.completions()[-1].body
    assert body == {"model": double.model, "prompt": rendered("[[say=Fine.]]"), "max_tokens": 32,
                    "temperature": 0.5, "seed": 7, "stop": ["<extra_id_1>", "###"]}
    assert double.completions()[-1].path == "/v1/completions"


@MODES
def test_a_server_cut_gives_the_same_answer_as_a_client_cut(mode: str) -> None:
    """vLLM answers "Hello there.\\n" (stop string left out); NeMo Ray ignores stop and answers
    "Hello there.\\n<extra_id_1>User…": both come out as "Hello there." with finish_reason "stop"."""
    answers = []
    for flavour in ("vllm", "nemo-ray"):
        with OpenAIDouble(flavour=flavour) as double:
            reply = invoke(chat(double), mode, TURN)
            answers.append((reply.content, reply.response_metadata["finish_reason"]))
            streamed = list(chat(double).stream(TURN)) if mode == "sync" else asyncio.run(_astream(chat(double)))
            answers.append(("".join(str(c.content) for c in streamed), streamed[-1].response_metadata["finish_reason"]))
    assert answers == [("Hello there.", "stop")] * 4


async def _astream(model: ChatSteerLM) -> list[Any]:
    return [c async for c in model.astream(TURN)]


def test_vllm_streams_token_by_token_and_holds_the_closing_newline_back(double: OpenAIDouble) -> None:
    chunks = list(chat(double).stream(TURN))
    texts = [str(c.content) for c in chunks]
    assert len([t for t in texts if t]) > 1 and "".join(texts) == "Hello there."
    assert not any(t.endswith("\n") for t in texts)
    body = double.completions()[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    # The usage chunk follows the finish reason: read, and on the last chunk (prompt tokens: the scripted
    # model's tokens of the prompt; output: "Hello", " there.", "\n", the end marker).
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata["output_tokens"] == 4


@MODES
def test_usage_comes_from_the_server_without_a_tokenizer(double: OpenAIDouble, mode: str) -> None:
    reply = invoke(chat(double), mode, TURN)
    assert reply.usage_metadata == {"input_tokens": len(tokenize(rendered(TURN))), "output_tokens": 4,
                                    "total_tokens": len(tokenize(rendered(TURN))) + 4}
    done = complete(llama(double), mode, TURN)
    assert done.raw["usage"]["completion_tokens"] == 4
    assert done.raw["usage"]["prompt_tokens"] == len(tokenize(done.raw["prompt"]))


@MODES
def test_logprobs_of_the_generated_tokens(double: OpenAIDouble, mode: str) -> None:
    reply = invoke(chat(double, logprobs=True), mode, TURN)
    assert reply.content == "Hello there."
    assert double.completions()[-1].body["logprobs"] == 1
    # the tokens the server generated before its stop: "Hello ", "there.", "\n"
    content = reply.response_metadata["logprobs"]["content"]  # ChatOpenAI's shape
    assert [(e["token"], e["logprob"]) for e in content] == [(t, token_logprob(t)) for t in ("Hello ", "there.", "\n")]
    done = complete(llama(double, logprobs=True), mode, TURN)
    assert done.text == "Hello there." and done.raw["logprobs"] == [token_logprob(t) for t in ("Hello ", "there.",
                                                                                                 "\n")]


@MODES
def test_a_batch_is_one_list_request(double: OpenAIDouble, mode: str) -> None:
    model = chat(double)
    inputs = [f"[[say=answer {i}]]" for i in range(3)]
    replies = model.batch(inputs) if mode == "sync" else asyncio.run(model.abatch(inputs))
    assert [r.content for r in replies] == ["answer 0", "answer 1", "answer 2"]
    assert [r.body["prompt"] for r in double.completions()] == [[rendered(t) for t in inputs]]
    assert all(r.usage_metadata is None for r in replies)  # a list's usage is the batch total: not per reply


@MODES
def test_a_server_refusing_lists_gets_single_requests_from_then_on(mode: str) -> None:
    rounds = [[f"[[say=r{r} a{i}]]" for i in range(3)] for r in range(2)]

    async def both(model: ChatSteerLM) -> list[list[Any]]:  # one event loop: one client, one connection
        return [await model.abatch(inputs) for inputs in rounds]

    with OpenAIDouble(lists=False) as double:
        model = chat(double)
        replies = [model.batch(inputs) for inputs in rounds] if mode == "sync" else asyncio.run(both(model))
        assert [[r.content for r in batch] for batch in replies] == [[f"r{r} a{i}" for i in range(3)]
                                                                     for r in range(2)]
        prompts = [r.body["prompt"] for r in double.completions()]
        assert isinstance(prompts[0], list)  # the first batch tried a list once ...
        assert all(isinstance(p, str) for p in prompts[1:]) and len(prompts) == 1 + 3 + 3  # ... then singles


@MODES
def test_context_length_refusal_is_the_context_overflow_error(mode: str) -> None:
    with OpenAIDouble(max_model_len=40) as double:
        with pytest.raises(lc.ContextOverflowError, match="maximum context length is 40 tokens") as info:
            invoke(chat(double), mode, "[[say=x]] " + "word " * 40)
        assert isinstance(info.value, ContextWindowExceededError)
        with pytest.raises(ContextWindowExceededError, match="maximum context length"):
            complete(llama(double), mode, "word " * 40)
        assert len(double.completions()) == 2  # not retried


@MODES
def test_api_key_is_sent_as_bearer_and_a_wrong_one_is_an_authentication_error(mode: str) -> None:
    with OpenAIDouble(api_key="sk-right") as double:
        assert invoke(chat(double, api_key="sk-right"), mode, "[[say=in]]").content == "in"
        assert all(r.authorized for r in double.requests)
        with pytest.raises(lc.ModelAuthenticationError, match="Incorrect API key") as info:
            invoke(chat(double, api_key="sk-wrong", max_retries=2), mode, "[[say=out]]")
        assert isinstance(info.value, AuthenticationError) and "sk-wrong" not in str(info.value)
        assert not double.requests[-1].authorized and len(double.completions()) == 1  # refused at readiness
        with pytest.raises(AuthenticationError):
            complete(llama(double, api_key="sk-wrong"), mode, "[[say=out]]")


@MODES
def test_an_unknown_model_is_model_not_found_listing_the_served_ids(double: OpenAIDouble, mode: str) -> None:
    started = time.monotonic()
    with pytest.raises(lc.ModelNotFoundError, match="the server has: steerlm-double; did you mean"):
        invoke(chat(double, model="steerlm-doubel", client_kwargs={}), mode, "hi")
    llm = SteerLM(model="no-such-model", url=double.url, profile=PROFILE, max_retries=0)
    with pytest.raises(ModelNotFoundError, match="steerlm-double"):
        complete(llm, mode, "hi")
    assert time.monotonic() - started < 20  # refused at once, not after the 30 s ready_timeout
    assert double.completions() == []


@MODES
def test_429_is_retried_after_retry_after_and_raised_when_retries_are_off(double: OpenAIDouble, mode: str) -> None:
    double.fail_next(1, 429, retry_after=0.4)
    started = time.monotonic()
    assert invoke(chat(double, max_retries=1), mode, "[[say=later]]").content == "later"
    assert time.monotonic() - started >= 0.4 and len(double.completions()) == 2
    double.fail_next(2, 429, retry_after=3)
    with pytest.raises(lc.ModelRateLimitError) as info:
        invoke(chat(double), mode, "[[say=never]]")
    assert isinstance(info.value, ServerOverloadedError) and info.value.retry_after == 3.0
    with pytest.raises(ServerOverloadedError, match="injected fault 429"):
        complete(llama(double), mode, "[[say=never]]")


@MODES
def test_503_is_retried(double: OpenAIDouble, mode: str) -> None:
    double.fail_next(2, 503)
    assert complete(llama(double, max_retries=2), mode, "[[say=back]]").text == "back"
    assert len(double.completions()) == 3


@MODES
def test_nemo_ray_trailing_slash_route_is_learned_once(mode: str) -> None:
    async def twice(model: ChatSteerLM) -> list[Any]:  # one event loop: one client, one connection
        return [(await model.ainvoke(text)).content for text in ("[[say=one]]", "[[say=two]]")]

    with OpenAIDouble(flavour="nemo-ray") as double:
        model = chat(double)
        replies = ([model.invoke(t).content for t in ("[[say=one]]", "[[say=two]]")] if mode == "sync"
                   else asyncio.run(twice(model)))
        assert replies == ["one", "two"]
        assert [r.path for r in double.completions()] == ["/v1/completions", "/v1/completions/", "/v1/completions/"]
        assert "stop" in double.completions()[-1].body  # sent, and ignored by the server: the client cuts
        streamed = [c.content for c in model.stream("[[say=three]]")]
        assert "".join(str(c) for c in streamed) == "three"
        llm = llama(double)
        chat_reply = (llm.chat([ChatMessage(role="user", content="[[say=four]]")]) if mode == "sync"
                      else asyncio.run(llm.achat([ChatMessage(role="user", content="[[say=four]]")])))
        assert chat_reply.message.content == "four"


@MODES
def test_a_url_list_fails_over_to_the_server_that_answers(double: OpenAIDouble, mode: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"openai+http://127.0.0.1:{probe.getsockname()[1]}/v1"
    model = ChatSteerLM(model=double.model, url=[dead, double.url], profile=PROFILE, max_retries=0,
                        client_kwargs={"ready_timeout": 5.0})
    assert invoke(model, mode, "[[say=over here]]").content == "over here"


@MODES
def test_per_call_headers_and_api_key_go_with_that_request_only(mode: str) -> None:
    with OpenAIDouble(api_key="sk-right") as double:
        model = chat(double, api_key="sk-right", headers={"x-team": "a"})
        assert invoke(model, mode, "[[say=one]]", headers={"x-trace": "t1"}).content == "one"
        sent = double.completions()[-1]
        assert sent.authorized and sent.headers["x-trace"] == "t1" and sent.headers["x-team"] == "a"
        with pytest.raises(AuthenticationError):
            invoke(model, mode, "[[say=two]]", api_key="sk-other")
        assert not double.completions()[-1].authorized
        assert invoke(model, mode, "[[say=three]]").content == "three"  # the client's own key again
        assert "x-trace" not in double.completions()[-1].headers


def test_replicas_share_the_requests_and_a_stopped_one_is_skipped() -> None:
    with OpenAIDouble() as first, OpenAIDouble() as second:
        model = ChatSteerLM(model=first.model, url=[first.url, second.url], profile=PROFILE, max_retries=0)
        for i in range(6):
            assert model.invoke(f"[[say=r{i}]]").content == f"r{i}"
        assert len(first.completions()) > 0 and len(second.completions()) > 0
        second.stop()  # its keep-alive connections close too
        before = len(first.completions())
        for i in range(4):
            assert model.invoke(f"[[say=s{i}]]").content == f"s{i}"
        assert len(first.completions()) == before + 4
