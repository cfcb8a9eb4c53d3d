"""The OpenAI-compatible transport's pure half: URL forms, request bodies from the codec's arrays, answers,
SSE chunks, server-side stop restoration, error messages and their classification."""

from __future__ import annotations

import json

import pytest

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
from steerlm.output import StopMatcher, clean_completion
from steerlm.params import GenerationParams
from steerlm.transport.base import ConnectionOptions, FixedInputs, WireRequest, spec_from_config
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
    restore_stop,
)
from steerlm.transport.signatures import detect
from steerlm.transport.urls import Endpoint, parse_url

END = "<extra_id_1>"


def request(prompts: list[str], params: GenerationParams, stops: tuple[str, ...] = (END,), *,
            stream: bool = False) -> WireRequest:
    codec = OpenAICodec(spec_from_config(OPENAI_CONFIG, "served-id"))
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
    assert parts.prompts == ["a", "b"] and parts.stops == (END, "###")


def test_stream_body_asks_for_usage_and_stops_are_capped_at_four() -> None:
    stops = (END, "a", "b", "c", "d")
    parts = RequestParts(request(["P"], GenerationParams(max_tokens=3), stops, stream=True))
    body = json.loads(parts.body("P"))
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["stop"] == [END, "a", "b", "c"] and parts.stops == stops  # all of them are enforced client side


def test_prompt_bytes_are_sent_exactly() -> None:
    prompt = "<extra_id_0>System\n\n<extra_id_1>User\nüñí \"q\"\n<extra_id_1>Assistant\n"
    parts = RequestParts(request([prompt], GenerationParams()))
    assert json.loads(parts.body(parts.prompts[0]))["prompt"] == prompt


@pytest.mark.parametrize("raw", [b"answer.\n<extra_id_1>", b"answer.\n"])
def test_a_server_cut_is_cleaned_exactly_like_a_client_cut(raw: bytes) -> None:
    """vLLM leaves the stop string out and says "stop": the text is the same as when the client cuts."""
    answer = json.dumps({"choices": [{"index": 0, "text": raw.decode(), "finish_reason": "stop"}]}).encode()
    outputs = read_answer(answer, 1, (END,), "m")
    assert outputs is not None
    text = outputs["text"][0, 0].decode()
    assert clean_completion(text, (END,)) == ("answer.", True)


def test_restore_stop_uses_vllm_stop_reason_and_leaves_length_alone() -> None:
    assert restore_stop("x\n", "stop", "###", (END, "###")) == "x\n###"
    assert restore_stop("x\n", "stop", 2, (END, "###")) == "x\n" + END  # a stop token id: the first stop
    assert restore_stop("x\n", "length", None, (END,)) == "x\n"
    assert restore_stop("x\n", "stop", None, ()) == "x\n"
    assert restore_stop("x\n<extra_id_1>y", "stop", None, (END,)) == "x\n<extra_id_1>y"


def test_read_answer_orders_choices_by_index_and_reads_usage_for_one_prompt() -> None:
    answer = {"choices": [{"index": 1, "text": "B", "finish_reason": "length"},
                          {"index": 0, "text": "A", "finish_reason": "length"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}
    outputs = read_answer(json.dumps(answer).encode(), 2, (END,), "m")
    assert outputs is not None
    assert [t.decode() for t in outputs["text"][:, 0]] == ["A", "B"]
    assert outputs["prompt_tokens"].tolist() == [[-1], [-1]]  # a list's usage is a total: not per prompt
    one = read_answer(json.dumps({"choices": [answer["choices"][1]], "usage": answer["usage"]}).encode(), 1, (),
                      "m")
    assert one is not None and one["prompt_tokens"].tolist() == [[9]] and one["completion_tokens"].tolist() == [[4]]
    assert one["finish_reason"][0, 0] == b"length"


def test_read_answer_with_another_number_of_choices_means_no_lists() -> None:
    joined = {"choices": [{"index": 0, "text": "A B", "finish_reason": "stop"}]}  # NeMo Ray joins the texts
    assert read_answer(json.dumps(joined).encode(), 2, (), "m") is None
    with pytest.raises(InvalidRequestError, match="not JSON"):
        read_answer(b"<html>", 1, (), "m")
    with pytest.raises(InvalidRequestError, match="choices"):
        read_answer(b'{"id": 1}', 1, (), "m")


def test_chunk_reader_deltas_then_finish_reason_and_usage_in_the_final_event() -> None:
    reader = ChunkReader((END,), "m")
    chunks = [{"choices": [{"index": 0, "text": "Hel", "finish_reason": None}]},
              {"choices": [{"index": 0, "text": "lo.\n", "finish_reason": None}]},
              {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}]
    events = [reader.feed(json.dumps(c)) for c in chunks]
    deltas = [e.outputs["text"][0, 0].decode() for e in events if e is not None]
    assert deltas == ["Hel", "lo.\n"] and not reader.done
    assert reader.feed("[DONE]") is None and reader.done
    final = reader.end()
    assert final.final and final.outputs["finish_reason"][0, 0] == b"stop"
    assert final.outputs["prompt_tokens"][0, 0] == 5 and final.outputs["completion_tokens"][0, 0] == 3
    # Fed through the client's stop matcher, the restored stop string removes the held-back newline.
    matcher = StopMatcher((END,))
    streamed = "".join(matcher.feed(d) for d in [*deltas, final.outputs["text"][0, 0].decode()])
    assert streamed == "Hello." and matcher.stopped


def test_chunk_reader_error_event_and_whole_answer() -> None:
    reader = ChunkReader((), "m")
    with pytest.raises(OpenAIStatusError, match="boom") as info:
        reader.feed(json.dumps({"error": {"message": "boom", "code": 400}}))
    assert info.value.status == 400
    whole = ChunkReader((END,), "m").whole(json.dumps(
        {"choices": [{"index": 0, "text": "all of it\n", "finish_reason": "stop"}]}).encode())
    assert whole.final and whole.outputs["text"][0, 0].decode() == "all of it\n" + END


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
    target = Target(parse_url("openai+http://h:1/v1"), ConnectionOptions())
    assert target.completions == "/v1/completions"
    assert not target.moved(404, {}, b'{"error": {"message": "The model `x` does not exist."}}')
    assert target.moved(307, {"location": "http://h:1/v1/completions/"}, b"")
    assert target.completions == "/v1/completions/"
    other = Target(parse_url("openai+http://h:1/v1"), ConnectionOptions())
    assert other.moved(404, {}, b'{"detail": "Not Found"}') and other.completions == "/v1/completions/"
    with pytest.raises(InvalidRequestError, match="no OpenAI completions route"):
        other.check(404, {}, b'{"detail": "Not Found"}', "m")
