"""ChatSteerLM and SteerLM against the real local Triton server, checked on the wire (request log).

Parametrized over gRPC / HTTP and sync / async where the behaviour has an I/O side.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core import exceptions as lc
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from tokenizers import ByteLevelBPETokenizer

from langchain_steerlm import ChatSteerLM, SteerLM
from steerlm import errors as core
from steerlm.profiles import STEERLM_SYSTEM_PROMPT
from steerlm.tokens import load_token_counter

MODEL = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
LABELS = "quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4"
PROTOCOLS = ["grpc", "http"]


def url(server: Any, protocol: str) -> str:
    return str(server.grpc_url if protocol == "grpc" else server.http_url)


def wire_prompts(server: Any, model: str = MODEL) -> list[str]:
    return [p for r in server.requests(model) for p in r["inputs"]["prompts"]["data"]]


def call(async_api: bool, runnable: Any, value: Any, **kwargs: Any) -> Any:
    if async_api:
        return asyncio.run(runnable.ainvoke(value, **kwargs))
    return runnable.invoke(value, **kwargs)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("async_api", [False, True])
def test_done_when_verbosity_1_is_on_the_wire(server: Any, protocol: str, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=url(server, protocol), verbosity=1, max_tokens=4)
    reply = call(async_api, model, "hi")
    assert wire_prompts(server) == [
        f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n<extra_id_1>User\nhi\n"
        f"<extra_id_1>Assistant\n<extra_id_2>{LABELS},verbosity:1\n"
    ]
    assert reply.response_metadata["steerlm_attributes"]["verbosity"] == 1
    assert reply.response_metadata["model_name"] == MODEL


@pytest.mark.parametrize("async_api", [False, True])
def test_steering_per_call_and_bound(server: Any, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, verbosity=1, max_tokens=2)
    call(async_api, model, "a", verbosity=0, humor=3)
    call(async_api, model.bind(creativity=2, attributes={"quality": 1}), "b")
    first, second = wire_prompts(server)
    assert first.endswith("<extra_id_2>quality:4,toxicity:0,humor:3,creativity:0,helpfulness:4,correctness:4,"
                          "coherence:4,complexity:4,verbosity:0\n")
    assert second.endswith("<extra_id_2>quality:1,toxicity:0,humor:0,creativity:2,helpfulness:4,correctness:4,"
                           "coherence:4,complexity:4,verbosity:1\n")
    with pytest.raises(core.ConfigurationError, match="verbosity=5"):
        call(async_api, model, "c", verbosity=5)
    assert len(server.requests(MODEL)) == 2


def test_a_reply_comes_back_as_history_with_its_own_labels(server: Any) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_tokens=3)
    first = model.invoke("[[say=Hello there]]", verbosity=0)
    assert first.content == "Hello there"
    model.invoke([HumanMessage("[[say=Hello there]]"), first, HumanMessage("And?")], verbosity=3)
    assert wire_prompts(server)[-1] == (
        f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n<extra_id_1>User\n[[say=Hello there]]\n"
        f"<extra_id_1>Assistant\n<extra_id_2>{LABELS},verbosity:0\nHello there\n"
        f"<extra_id_1>User\nAnd?\n<extra_id_1>Assistant\n<extra_id_2>{LABELS},verbosity:3\n"
    )


class Counter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = self.ends = 0
        self.tokens: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("async_api", [False, True])
def test_batch_is_one_triton_request(server: Any, protocol: str, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=url(server, protocol), max_tokens=3)
    counter = Counter()
    inputs = ["[[say=one]]", "[[say=two]]", "[[say=three]]"]
    config: Any = {"callbacks": [counter]}
    replies = asyncio.run(model.abatch(inputs, config)) if async_api else model.batch(inputs, config)
    assert [r.content for r in replies] == ["one", "two", "three"]
    requests = server.requests(MODEL)
    assert len(requests) == 1 and requests[0]["inputs"]["prompts"]["shape"] == [3, 1]
    assert (counter.starts, counter.ends) == (3, 3)


@pytest.mark.parametrize(
    ("protocol", "name", "pieces"),
    [("grpc", STREAMING, ["alpha ", "beta ", "gamma"]),  # decoupled: a real token stream
     ("http", MODEL, ["alpha beta gamma"])],  # unary model (decoupled needs gRPC): one chunk
)
def test_streaming_fires_callbacks(server: Any, protocol: str, name: str, pieces: list[str]) -> None:
    model = ChatSteerLM(model=name, profile=MODEL, url=url(server, protocol))
    counter = Counter()
    chunks = list(model.stream("[[say=alpha beta gamma]]", {"callbacks": [counter]}))
    assert [c.content for c in chunks if c.content] == pieces
    assert chunks[-1].chunk_position == "last" and [t for t in counter.tokens if t] == pieces
    invoked = ChatSteerLM(model=name, profile=MODEL, url=url(server, protocol), streaming=True)
    assert invoked.invoke("[[say=x y]]").content == "x y"


async def test_async_streaming(server: Any) -> None:
    model = ChatSteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url)
    chunks = [c async for c in model.astream("[[say=alpha beta]]")]
    assert "".join(c.text for c in chunks) == "alpha beta" and chunks[-1].chunk_position == "last"
    assert len(server.requests(STREAMING)) == 1


@pytest.mark.parametrize("async_api", [False, True])
def test_stop_strings_are_sent_and_enforced(server: Any, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, stop=["gamma"])
    assert call(async_api, model, "[[say=alpha beta gamma delta]]").content == "alpha beta "
    assert call(async_api, model, "[[say=alpha beta gamma delta]]", stop=["beta"]).content == "alpha "
    sent = [" ".join(r["inputs"]["stop_words_list"]["data"]) for r in server.requests(MODEL)]
    assert "gamma" in sent[0] and "beta" in sent[1] and "gamma" not in sent[1]


@pytest.mark.parametrize("async_api", [False, True])
def test_per_call_model_override_reaches_that_model(server: Any, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_tokens=2)
    reply = call(async_api, model, "hi", model="nemo-2310")
    assert reply.response_metadata["model_name"] == "nemo-2310"
    assert len(server.requests("nemo-2310")) == 1 and server.requests(MODEL) == []
    assert model._get_ls_params(model="nemo-2310")["ls_model_name"] == "nemo-2310"


@pytest.mark.parametrize(
    ("kwargs", "prompt", "core_class", "lc_class"),
    [
        ({}, "[[error=the model broke]]", core.InvalidRequestError, lc.ModelInvalidRequestError),
        ({"model": "no-such-model", "profile": MODEL, "client_kwargs": {"ready_timeout": 0.0}}, "hi",
         core.ModelNotFoundError, lc.ModelNotFoundError),
        ({"timeout": 0.5, "max_retries": 0}, "[[sleep=2]]", core.RequestTimeoutError, lc.ModelTimeoutError),
    ],
)
@pytest.mark.parametrize("async_api", [False, True])
def test_server_errors_are_typed_both_ways(server: Any, async_api: bool, kwargs: dict[str, Any], prompt: str,
                                           core_class: type, lc_class: type) -> None:
    model = ChatSteerLM(**{"model": MODEL, "url": server.grpc_url, **kwargs})
    with pytest.raises(lc.ModelError) as info:
        call(async_api, model, prompt)
    assert isinstance(info.value, core_class) and isinstance(info.value, lc_class)


@pytest.mark.parametrize("async_api", [False, True])
def test_unreachable_server_is_a_connection_error(async_api: bool) -> None:
    model = ChatSteerLM(url="grpc://127.0.0.1:9", max_retries=0, client_kwargs={"ready_timeout": 0.0})
    with pytest.raises(lc.ModelConnectionError) as info:
        call(async_api, model, "hi")
    assert isinstance(info.value, core.ServerUnavailableError)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("async_api", [False, True])
def test_string_llm_wraps_one_user_turn_or_sends_verbatim(server: Any, protocol: str, async_api: bool) -> None:
    llm = SteerLM(model="nemo-v2.0", profile="NV-Llama2-70B-RLHF-Chat", url=url(server, protocol), max_tokens=3)
    assert call(async_api, llm, "[[say=done]]") == "done"
    assert call(async_api, llm, "RAW [[say=raw]]", raw_prompt=True) == "raw"
    results = asyncio.run(llm.abatch(["a", "b"])) if async_api else llm.batch(["a", "b"])
    assert len(results) == 2
    prompts = wire_prompts(server, "nemo-v2.0")
    assert prompts[:2] == ["<extra_id_0>System\n\n<extra_id_1>User\n[[say=done]]\n<extra_id_1>Assistant\n",
                           "RAW [[say=raw]]"]
    assert len(server.requests("nemo-v2.0")) == 3  # the batch of two was one request


def test_string_llm_streams(server: Any) -> None:
    llm = SteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url)
    pieces = list(llm.stream("[[say=a b]]"))
    assert pieces[:2] == ["a ", "b"] and "".join(pieces) == "a b"  # the last, empty piece carries the metadata


def test_ai_message_result_type(server: Any) -> None:
    reply = ChatSteerLM(model=MODEL, url=server.http_url, max_tokens=2).invoke("hi")
    assert isinstance(reply, AIMessage) and reply.response_metadata["finish_reason"] == "length"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> str:
    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator([STEERLM_SYSTEM_PROMPT, LABELS, "alpha beta gamma"] * 10, vocab_size=400,
                                min_frequency=1, show_progress=False)
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    trained.save(str(path))
    return str(path)


@pytest.mark.parametrize("async_api", [False, True])
def test_usage_counts_the_wire_prompt_exactly(server: Any, tokenizer: str, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, tokenizer=tokenizer)
    reply = call(async_api, model, "[[say=alpha beta gamma]]")
    counter = load_token_counter(tokenizer)
    wire = wire_prompts(server)[0]
    assert reply.usage_metadata == {"input_tokens": counter.count(wire, add_special_tokens=True),
                                    "output_tokens": counter.count("alpha beta gamma"),
                                    "total_tokens": counter.count(wire, add_special_tokens=True)
                                    + counter.count("alpha beta gamma")}


@pytest.mark.parametrize("async_api", [False, True])
def test_context_overflow_is_raised_before_anything_is_sent(server: Any, tokenizer: str, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, tokenizer=tokenizer, max_tokens=1024)
    with pytest.raises(lc.ContextOverflowError) as info:
        call(async_api, model, "zebra quokka " * 1200)
    assert isinstance(info.value, core.ContextWindowExceededError) and info.value.limit == 4096
    assert server.requests(MODEL) == []
