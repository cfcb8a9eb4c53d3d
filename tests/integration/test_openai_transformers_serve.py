"""ChatSteerLM and LlamaIndex SteerLM against a real third-party OpenAI-compatible server: ``transformers
serve`` (Hugging Face transformers' own server) serving the embedded tiny model on CPU, on loopback.

The tiny model is untrained, so its greedy answers are nonsense — but deterministic: each test compares
what the adapters return with a direct ``POST /v1/completions`` of the byte-exact SteerLM prompt
(rendered with `format_prompt`) and the same sampling fields, cleaned the way the client cleans (cut
at the first stop string, one newline before it dropped). Same answer and same prompt token count
mean the same prompt reached the model.

transformers serve keeps a stop string in the text (its ``stop_strings``) and refuses list prompts
(400 "prompt must be a string."), so these also cover the client-side cut and the fallback from one
list request to concurrent single-prompt requests.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from llama_index.core.base.llms.types import ChatMessage

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from steerlm import SteerLMClient, format_prompt
from steerlm.errors import ModelNotFoundError
from steerlm.output import clean_completion
from steerlm.serve.tiny_model import ensure_tiny_model
from steerlm_testing.transformers_serve import TransformersServe

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROFILE = "Llama2-70B-SteerLM-Chat"
STOPS = ("<extra_id_1>",)
TOKENS = 12
QUESTIONS = ("Name a colour.", "What is Triton?", "Say hello.")


@pytest.fixture(scope="module")
def served() -> Iterator[TransformersServe]:
    with TransformersServe(ensure_tiny_model()) as server:
        yield server


def rendered(question: str, system: str | None = None) -> str:
    turns = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return format_prompt(turns, profile=PROFILE)


def direct(served: TransformersServe, prompt: str, **fields: Any) -> dict[str, Any]:
    """One completion straight from the server (no steerlm): the reference answer."""
    body = {"model": served.model, "prompt": prompt, "max_tokens": TOKENS, "temperature": 0, **fields}
    request = urllib.request.Request(f"{served.base}/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result


def expected(served: TransformersServe, prompt: str, stops: tuple[str, ...] = STOPS) -> str:
    text = direct(served, prompt, stop=list(stops))["choices"][0]["text"]
    return clean_completion(text, stops)[0]


def usage_of(served: TransformersServe, prompt: str) -> dict[str, int]:
    """The server's own token counts for `prompt`, as LangChain's usage_metadata names them."""
    usage = direct(served, prompt, stop=list(STOPS))["usage"]
    return {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def chat_model(served: TransformersServe, **kwargs: Any) -> ChatSteerLM:
    return ChatSteerLM(model=served.model, url=served.url, profile=PROFILE, max_tokens=TOKENS, temperature=0,
                       max_retries=0, timeout=120, **kwargs)


def llama(served: TransformersServe, **kwargs: Any) -> SteerLM:
    return SteerLM(model=served.model, url=served.url, profile=PROFILE, max_tokens=TOKENS, temperature=0,
                   max_retries=0, timeout=120, **kwargs)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_invoke_matches_the_server_answer_to_the_exact_prompt(served: TransformersServe, mode: str) -> None:
    model = chat_model(served)
    messages = [("system", "Be brief."), ("human", QUESTIONS[0])]
    reply = model.invoke(messages) if mode == "sync" else asyncio.run(model.ainvoke(messages))
    assert isinstance(reply, AIMessage)
    want = expected(served, rendered(QUESTIONS[0], "Be brief."))
    assert want and reply.content == want
    assert reply.response_metadata["finish_reason"] in {"stop", "length"}
    assert reply.usage_metadata == usage_of(served, rendered(QUESTIONS[0], "Be brief."))  # no tokenizer configured


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_stream_yields_several_deltas_that_join_to_the_answer(served: TransformersServe, mode: str) -> None:
    model = chat_model(served)

    async def collect() -> list[AIMessageChunk]:
        return [c async for c in model.astream(QUESTIONS[1])]

    chunks = list(model.stream(QUESTIONS[1])) if mode == "sync" else asyncio.run(collect())
    texts = [c.content for c in chunks if c.content]
    assert len(texts) > 1  # token by token, not one whole chunk
    assert "".join(str(t) for t in texts) == expected(served, rendered(QUESTIONS[1]))
    assert chunks[-1].response_metadata["finish_reason"] in {"stop", "length"}
    assert chunks[-1].usage_metadata == usage_of(served, rendered(QUESTIONS[1]))  # from the stream's last chunk


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_batch_falls_back_to_single_requests_and_keeps_order(served: TransformersServe, mode: str) -> None:
    model = chat_model(served)
    replies = model.batch(list(QUESTIONS)) if mode == "sync" else asyncio.run(model.abatch(list(QUESTIONS)))
    assert [r.content for r in replies] == [expected(served, rendered(q)) for q in QUESTIONS]


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_a_caller_stop_string_is_cut_client_side(served: TransformersServe, mode: str) -> None:
    """transformers serve keeps the stop string in its text; the client cuts there and says "stop"."""
    prompt = rendered(QUESTIONS[2])
    full = expected(served, prompt)
    stop = next(full[i:i + 3] for i in range(2, len(full) - 3) if full[i:i + 3].strip() == full[i:i + 3])
    want = full[:full.index(stop)].removesuffix("\n")
    model = chat_model(served, stop=[stop])
    if mode == "sync":
        reply = model.invoke(QUESTIONS[2])
        text, reason = str(reply.content), reply.response_metadata["finish_reason"]
    else:
        chunks = list(model.stream(QUESTIONS[2]))
        text, reason = "".join(str(c.content) for c in chunks), chunks[-1].response_metadata["finish_reason"]
    assert text == want and reason == "stop"


def test_llamaindex_complete_chat_stream_and_async(served: TransformersServe) -> None:
    llm = llama(served)
    want = expected(served, rendered(QUESTIONS[0]))
    done = llm.complete(QUESTIONS[0])
    assert done.text == want and done.raw["prompt"] == rendered(QUESTIONS[0])
    counts = usage_of(served, rendered(QUESTIONS[0]))
    assert done.raw["usage"] == {"prompt_tokens": counts["input_tokens"], "completion_tokens": counts["output_tokens"],
                                 "total_tokens": counts["total_tokens"]}
    assert llm.chat([ChatMessage(role="user", content=QUESTIONS[0])]).message.content == want
    streamed = list(llm.stream_complete(QUESTIONS[0]))
    assert len(streamed) > 1 and streamed[-1].text == want

    async def run() -> tuple[str, list[str], str]:
        one = (await llm.acomplete(QUESTIONS[0])).text
        many = await asyncio.gather(*(llm.acomplete(q) for q in QUESTIONS))
        parts = [r.delta or "" async for r in await llm.astream_chat([ChatMessage(role="user",
                                                                                  content=QUESTIONS[0])])]
        return one, [r.text for r in many], "".join(parts)

    one, many, streamed_chat = asyncio.run(run())
    assert one == want and streamed_chat == want
    assert many == [expected(served, rendered(q)) for q in QUESTIONS]


def test_an_unknown_model_lists_what_the_server_serves(served: TransformersServe) -> None:
    client = SteerLMClient("not-served", served.url, profile=PROFILE, max_retries=0)
    with pytest.raises(ModelNotFoundError, match="the server has: " + re.escape(served.model)):
        client.generate(rendered(QUESTIONS[0]))
    client.close()


def test_structured_output_where_response_format_is_refused(served: TransformersServe,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """transformers serve refuses ``response_format`` on /v1/completions (422 "Unexpected fields"): the request
    is sent again without it, the schema travels by the prompted protocol only, and what the untrained
    model answers is checked, not returned unchecked: strict=True reports the mismatch as the parsing error."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from langchain_steerlm import SteerLMStructuredOutputError
    from steerlm import get_profile
    from steerlm.structured import json_instructions

    schema = {"title": "Colour", "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    guided = convert_to_openai_tool(schema)["function"]["parameters"]  # what with_structured_output sends
    prompt = rendered(QUESTIONS[0], get_profile(PROFILE).default_system + "\n\n" + json_instructions(guided))
    rejected = urllib.request.Request(
        f"{served.base}/completions", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"model": served.model, "prompt": "x", "max_tokens": 1,
                         "response_format": {"type": "json_object"}}).encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rejected, timeout=120)
    assert refused.value.code == 422  # the server's own behaviour, which the fallback is for
    result = chat_model(served).with_structured_output(schema, method="json_schema", strict=True,
                                                       include_raw=True).invoke(QUESTIONS[0])
    assert "refuses response_format (HTTP 422)" in caplog.text
    assert result["raw"].content == expected(served, prompt)  # the prompted protocol's exact prompt was served
    if result["parsed"] is None:
        assert isinstance(result["parsing_error"], SteerLMStructuredOutputError)
    else:
        assert isinstance(result["parsed"], dict) and isinstance(result["parsed"].get("name"), str)
