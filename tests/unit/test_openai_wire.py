"""The OpenAI-compatible transport's pure half: URL forms, request bodies from the codec's arrays, answers,
SSE chunks, server-side stop restoration, error messages and their classification."""

from __future__ import annotations

import json

import pytest

from steerlm.client.core import ClientCore
from steerlm.client.settings import ClientSettings
from steerlm.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerOverloadedError,
    ServerUnavailableError,
    classify,
)
from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.transport.assembly import Joiner, StreamAssembler
from steerlm.transport.base import FixedInputs, StreamEvent, WireRequest, spec_from_config
from steerlm.transport.openai.codec import OPENAI_CONFIG, OpenAICodec
from steerlm.transport.openai.common import Target
from steerlm.transport.openai.wire import (
    ChunkReader,
    OpenAIStatusError,
    RequestParts,
    error_message,
    list_refused,
    model_ids,
    read_answer,
)
from steerlm.transport.signatures import detect
from steerlm.transport.urls import Endpoint, parse_url

END = "<extra_id_1>"


CODEC = OpenAICodec(spec_from_config(OPENAI_CONFIG, "served-id"))


def request(prompts: list[str], params: GenerationParams, stops: tuple[str, ...] = (END,), *,
            stream: bool = False) -> WireRequest:
    codec = CODEC
    arrays, dropped = codec.encode_params(params, stops, len(prompts), stream=stream)
    assert dropped == []
    return WireRequest("served-id", codec.encode_prompts(prompts), FixedInputs(arrays, codec.outputs))


@pytest.mark.parametrize(("url", "expected"), [
    ("openai+http://127.0.0.1:8000/v1", Endpoint("openai", "127.0.0.1:8000/v1", False,
                                                 "openai+http://127.0.0.1:8000/v1")),
    ("openai+https://nim.example.com/v1/", Endpoint("openai", "nim.example.com:443/v1", True,
                                                    "openai+https://nim.example.com:443/v1")),
    ("openai+http://h:8000", Endpoint("openai", "h:8000/v1", False, "openai+http://h:8000/v1")),
    ("OPENAI+HTTP://h:9/api/v1", Endpoint("openai", "h:9/api/v1", False, "openai+http://h:9/api/v1")),
])
def test_url_forms(url: str, expected: Endpoint) -> None:
    assert parse_url(url) == expected


def test_the_synthesised_config_is_detected_as_the_openai_signature() -> None:
    spec = spec_from_config(OPENAI_CONFIG, "m")
    assert detect(spec) is OpenAICodec
    assert spec.decoupled and spec.max_batch_size > 1


def test_body_carries_max_tokens_always_and_sampling_fields_only_when_set() -> None:
    parts = RequestParts(request(["P"], GenerationParams()))
    assert json.loads(parts.body("P")) == {"model": "served-id", "max_tokens": 512, "stop": [END], "prompt": "P"}
    params = GenerationParams(max_tokens=7, temperature=0.5, top_p=0.9, top_k=3, seed=11, repetition_penalty=1.2,
                              stop=("###",))
    parts = RequestParts(request(["a", "b"], params, (END, "###"), stream=False))
    assert json.loads(parts.body(parts.prompts)) == {
        "model": "served-id", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 3, "seed": 11,
        "repetition_penalty": 1.2, "stop": [END, "###"], "prompt": ["a", "b"]}
    assert parts.prompts == ["a", "b"]


def test_stream_body_asks_for_usage_and_stops_are_capped_at_four() -> None:
    stops = (END, "a", "b", "c", "d")
    parts = RequestParts(request(["P"], GenerationParams(max_tokens=3), stops, stream=True))
    body = json.loads(parts.body("P"))
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["stop"] == [END, "a", "b", "c"]  # the first four (the OpenAI limit); the client enforces all


def test_prompt_bytes_are_sent_exactly() -> None:
    prompt = "<extra_id_0>System\n\n<extra_id_1>User\nüñí \"q\"\n<extra_id_1>Assistant\n"
    parts = RequestParts(request([prompt], GenerationParams()))
    assert json.loads(parts.body(parts.prompts[0]))["prompt"] == prompt


def whole(answer: dict[str, object], prompts: int = 1) -> Joiner:
    """A non-streamed answer as the client reads it: one final event into the Joiner."""
    outputs = read_answer(json.dumps(answer).encode(), prompts, "m")
    assert outputs is not None
    joiner = Joiner(CODEC, ["p"] * prompts, (END,), whole=True)
    assert joiner.feed(StreamEvent(outputs, final=True))
    return joiner


def cleaned(joiner: Joiner) -> list[tuple[str, str]]:
    core = ClientCore(ClientSettings("served-id", "openai+http://h:1/v1", profile="Llama2-70B-SteerLM-Chat",
                                     timeout=1, max_retries=0, ready_timeout=0))
    core.install(OPENAI_CONFIG)
    answers = joiner.answers()
    return [(c.text, c.finish_reason) for c in core.completions(["p"] * len(answers), answers, (END,))]


@pytest.mark.parametrize("text", ["answer.\n<extra_id_1>", "answer.\n"])
def test_a_server_cut_is_cleaned_exactly_like_a_client_cut(text: str) -> None:
    """vLLM leaves the stop string out and says "stop": the text is the same as when the client cuts."""
    joiner = whole({"choices": [{"index": 0, "text": text, "finish_reason": "stop"}]})
    assert cleaned(joiner) == [("answer.", "stop")]


def test_a_length_cut_keeps_its_newline() -> None:
    assert cleaned(whole({"choices": [{"index": 0, "text": "answer.\n", "finish_reason": "length"}]})) == [
        ("answer.\n", "length")]


def test_read_answer_orders_choices_by_index_and_reads_usage_for_one_prompt() -> None:
    answer = {"choices": [{"index": 1, "text": "B", "finish_reason": "length"},
                          {"index": 0, "text": "A", "finish_reason": "length"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}
    two = whole(answer, 2).answers()
    assert [a.text for a in two] == ["A", "B"]
    assert [a.report.usage for a in two] == [None, None]  # a list's usage is the batch total: not per prompt
    one = whole({"choices": [answer["choices"][1]], "usage": answer["usage"]}).answers()[0]  # type: ignore[index]
    assert one.report.usage is not None and (one.report.usage.input_tokens, one.report.usage.output_tokens) == (9, 4)
    assert one.report.finish_reason == "length"


def test_read_answer_with_another_number_of_choices_means_no_lists() -> None:
    joined = {"choices": [{"index": 0, "text": "A B", "finish_reason": "stop"}]}  # NeMo Ray joins the texts
    assert read_answer(json.dumps(joined).encode(), 2, "m") is None
    with pytest.raises(InvalidRequestError, match="not JSON"):
        read_answer(b"<html>", 1, "m")
    with pytest.raises(InvalidRequestError, match="choices"):
        read_answer(b'{"id": 1}', 1, "m")


def test_chunk_reader_deltas_then_finish_reason_and_usage_in_the_final_event() -> None:
    reader = ChunkReader("m")
    chunks = [{"choices": [{"index": 0, "text": "Hel", "finish_reason": None}]},
              {"choices": [{"index": 0, "text": "lo.\n", "finish_reason": None}]},
              {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}]
    events = [e for e in (reader.feed(json.dumps(c)) for c in chunks) if e is not None]
    assert [e.outputs["text"][0, 0] for e in events] == [b"Hel", b"lo.\n"] and not reader.done
    assert reader.feed("[DONE]") is None and reader.done
    events.append(reader.end())
    # Through the client's stream assembly: the held-back newline goes with the server's stop.
    assembler = StreamAssembler(CODEC, (END,))
    chunks_out = [c for e in events for c in assembler.feed(e)]
    assert "".join(c.text for c in chunks_out) == "Hello." and not any(c.text.endswith("\n") for c in chunks_out)
    last = chunks_out[-1]
    assert last.finish_reason == "stop" and last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (5, 3)


def test_chunk_reader_error_event_and_whole_answer() -> None:
    reader = ChunkReader("m")
    with pytest.raises(OpenAIStatusError, match="boom") as info:
        reader.feed(json.dumps({"error": {"message": "boom", "code": 400}}))
    assert info.value.status == 400
    event = ChunkReader("m").whole(json.dumps(
        {"choices": [{"index": 0, "text": "all of it\n", "finish_reason": "stop"}]}).encode())
    assert event.final and event.outputs["text"][0, 0] == b"all of it\n"
    assert event.outputs["finish_reason"][0, 0] == b"stop"


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"error": {"message": "bad key", "type": "auth", "code": 401}}', "bad key"),
    (b'{"object": "error", "message": "The model `x` does not exist.", "code": 404}', "The model `x` does not exist."),
    (b'{"detail": "prompt must be a string."}', "prompt must be a string."),
    (b'{"detail": [{"loc": ["body", "prompt"], "msg": "Input should be a valid string"}]}',
     "Input should be a valid string"),
    (b"upstream timeout", "upstream timeout"),
    (b"", "(empty body)"),
])
def test_error_messages(raw: bytes, message: str) -> None:
    assert error_message(raw) == message


def test_list_refusals() -> None:
    assert list_refused(400, "prompt must be a string.")
    assert list_refused(422, "body.prompt: Input should be a valid string")
    assert list_refused(500, "Error during inference: unhashable type: 'list'")
    assert not list_refused(400, "This model's maximum context length is 64 tokens.")
    assert not list_refused(401, "invalid api key")
    assert not list_refused(429, "too many requests")


def test_model_ids() -> None:
    assert model_ids(b'{"object": "list", "data": [{"id": "a"}, {"id": "b", "object": "model"}]}') == ["a", "b"]
    assert model_ids(b"not json") is None and model_ids(b'{"data": 3}') is None


@pytest.mark.parametrize(("status", "message", "expected"), [
    (400, "This model's maximum context length is 64 tokens. However, you requested 90 tokens.",
     ContextWindowExceededError),
    (400, "prompt must be a string.", InvalidRequestError),
    (401, "Incorrect API key provided", AuthenticationError),
    (403, "Forbidden", AuthenticationError),
    (404, "The model `x` does not exist.", ModelNotFoundError),
    (408, "Request Timeout", RequestTimeoutError),
    (409, "Conflict", ServerUnavailableError),
    (429, "Too Many Requests", ServerOverloadedError),
    (500, "Internal Server Error", ServerUnavailableError),
    (503, "Service Unavailable", ServerUnavailableError),
    (501, "Not Implemented", InvalidRequestError),
])
def test_statuses_are_classified(status: int, message: str, expected: type[Exception]) -> None:
    error = classify(OpenAIStatusError(status, message, {"Retry-After": "3"}), model="m")
    assert type(error) is expected, error
    assert not isinstance(error, AuthenticationError) or not type(error).retryable


def test_retry_after_is_read_case_insensitively_from_the_answer() -> None:
    from email.message import Message

    headers = Message()
    headers["retry-after"] = "2.5"
    error = classify(OpenAIStatusError(429, "slow down", headers), model="m")
    assert isinstance(error, ServerOverloadedError) and error.retry_after == 2.5


def test_route_is_learned_from_a_redirect_or_a_bare_not_found() -> None:
    target = Target(parse_url("openai+http://h:1/v1"), ClientSettings("m", "openai+http://h:1/v1"))
    assert target.completions == "/v1/completions"
    assert not target.moved(404, {}, b'{"error": {"message": "The model `x` does not exist."}}')
    assert target.moved(307, {"location": "http://h:1/v1/completions/"}, b"")
    assert target.completions == "/v1/completions/"
    other = Target(parse_url("openai+http://h:1/v1"), ClientSettings("m", "openai+http://h:1/v1"))
    assert other.moved(404, {}, b'{"detail": "Not Found"}') and other.completions == "/v1/completions/"
    with pytest.raises(InvalidRequestError, match="no OpenAI completions route"):
        other.check(404, {}, b'{"detail": "Not Found"}', "m")


def test_logprobs_are_asked_for_and_read_from_answers_and_chunks() -> None:
    parts = RequestParts(request(["P"], GenerationParams(logprobs=True)))
    assert json.loads(parts.body("P"))["logprobs"] == 1  # at least 1: some servers read 0 as "none"
    assert json.loads(RequestParts(request(["P"], GenerationParams(top_logprobs=3))).body("P"))["logprobs"] == 3
    assert "logprobs" not in json.loads(RequestParts(request(["P"], GenerationParams())).body("P"))
    answer = {"choices": [{"index": 0, "text": "ab", "finish_reason": "length",
                           "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-0.5, -1.25],
                                        "top_logprobs": [{"x": -2.0, "a": -0.5}, None]}}]}
    assert whole(answer).answers()[0].report.logprobs == [TokenLogprob("a", -0.5, (("a", -0.5), ("x", -2.0))),
                                                          TokenLogprob("b", -1.25)]
    reader = ChunkReader("m")
    events = [reader.feed(json.dumps({"choices": [{"index": 0, "text": t, "logprobs": {
        "tokens": [t], "token_logprobs": [v], "top_logprobs": [{t: v, "z": -3.0}]}}]}))
              for t, v in (("a", -0.5), ("b", -1.25))]
    assembler = StreamAssembler(CODEC, (END,), top=1)
    chunks = [c for event in [*events, reader.end()] if event is not None for c in assembler.feed(event)]
    assert [e.logprob for e in assembler.report.logprobs or ()] == [-0.5, -1.25]
    # each chunk carries the entries that came with it, trimmed to `top` alternatives
    assert [c.logprobs for c in chunks] == [(TokenLogprob("a", -0.5, (("a", -0.5),)),),
                                            (TokenLogprob("b", -1.25, (("b", -1.25),)),), None]
