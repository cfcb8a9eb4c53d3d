"""The local server's reproductions of Triton's vLLM backend and NeMo Export-Deploy, without a server: request
decoding (vLLM's defaults, refused fields, the streaming/echo rule), server-side stops as vLLM applies them
(excluded, held back while streaming), per-response token counts, and the deployables' in-band errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from steerlm.serve.export_deploy import DEPLOYABLES, _answer
from steerlm.serve.token_stats import count_tokens, token_logprob, token_pieces
from steerlm.serve.vllm_backend import STREAM_REFUSED, _Responder, parse_sampling
from steerlm_testing.scripted import ScriptedBackend

SAY = "[[say=one two three\\n\\u003cextra_id_1>User\\nmore]]"


def request(prompt: str, *, stream: bool, exclude: bool | None = True, **sampling: Any) -> dict[str, np.ndarray]:
    data = {"text_input": np.array([prompt.encode()], dtype=object), "stream": np.array([stream]),
            "sampling_parameters": np.array([json.dumps(sampling).encode()], dtype=object),
            **{flag: np.array([True]) for flag in ("return_finish_reason", "return_num_input_tokens",
                                                   "return_num_output_tokens")}}
    if exclude is not None:
        data["exclude_input_in_output"] = np.array([exclude])
    return data


def run(data: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    responder = _Responder(ScriptedBackend(sleep=lambda s: None), data)
    out = []
    while True:
        outputs, done = responder.step()
        out.append({k: v.tolist()[0] for k, v in outputs.items()})
        if done:
            return out


def test_sampling_defaults_and_refused_fields() -> None:
    assert parse_sampling(None).request.max_tokens == 16  # vLLM's default
    parsed = parse_sampling('{"max_tokens": 5, "stop": "X", "seed": 2, "logprobs": 0}')
    assert (parsed.request.max_tokens, parsed.stops, parsed.request.seed, parsed.logprobs) == (5, ("X",), 2, 0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        parse_sampling('{"bogus": 1}')


def test_whole_answer_excludes_the_stop_and_keeps_the_newline() -> None:
    [only] = run(request(SAY, stream=False, stop=["<extra_id_1>"], max_tokens=20))
    assert only == {"text_output": b"one two three\n", "finish_reason": b"stop",
                    "num_input_tokens": len(SAY.split()), "num_output_tokens": 5}
    [echoed] = run(request(SAY, stream=False, exclude=None, max_tokens=2))  # no exclude flag: prompt in front
    assert echoed["text_output"] == (SAY + "one two ").encode() and echoed["finish_reason"] == b"length"
    [kept] = run(request(SAY, stream=False, stop=["three"], include_stop_str_in_output=True))
    assert kept["text_output"] == b"one two three"


def test_stream_deltas_hold_back_a_possible_stop_and_count_per_response() -> None:
    responses = run(request(SAY, stream=True, stop=["<extra_id_1>"], max_tokens=20))
    deltas = [r["text_output"].decode() for r in responses]
    assert "".join(deltas) == "one two three\n"
    shown = ""
    for delta in deltas[:-1]:  # while unfinished, the last 11 characters (a stop's length - 1) are held back
        shown += delta
        assert len(shown) <= len("one two three\n<extra_id_1>") - 11
    assert sum(r["num_output_tokens"] for r in responses) == 5
    assert [r["finish_reason"] for r in responses] == [b"None"] * (len(responses) - 1) + [b"stop"]
    with pytest.raises(ValueError, match="exclude_input_in_output"):
        _Responder(ScriptedBackend(), request(SAY, stream=True, exclude=False))
    assert STREAM_REFUSED.startswith("When streaming")


def test_token_stats_from_cumulative_steps() -> None:
    assert token_pieces([["a "], ["a b"], ["a b"]], 1) == [["a ", "b"]]
    assert count_tokens(object(), "x y  z") == 3
    assert count_tokens(type("B", (), {"count_tokens": lambda self, text: 42})(), "x") == 42
    assert -4 < token_logprob("tok") <= 0 and token_logprob("tok") == token_logprob("tok")


@pytest.mark.parametrize(("name", "in_band"), [("hf", True), ("vllm", True), ("megatron", False)])
def test_deployables_fail_in_band_with_one_row_or_as_triton_errors(name: str, in_band: bool) -> None:
    data = {"prompts": np.array([[b"[[error=boom]]"], [b"fine"]], dtype=object)}
    backend = ScriptedBackend(sleep=lambda s: None)
    if not in_band:
        with pytest.raises(Exception, match="boom"):
            _answer(backend, DEPLOYABLES[name], data)
        return
    assert _answer(backend, DEPLOYABLES[name], data)["sentences"].tolist() == [[b"An error occurred: boom"]]


def test_megatron_echo_and_chat_template_flags() -> None:
    backend = ScriptedBackend(sleep=lambda s: None)
    data = {"prompts": np.array([[b"Q [[say=A.]]"]], dtype=object), "echo": np.array([[True]])}
    assert _answer(backend, DEPLOYABLES["megatron"], data)["sentences"].tolist() == [[b"Q [[say=A.]]A."]]
    data = {"prompts": np.array([[b"<extra_id_0>System\n"]], dtype=object), "apply_chat_template": np.array([[True]])}
    with pytest.raises(json.JSONDecodeError):  # the server parses the prompt as JSON chat messages
        _answer(backend, DEPLOYABLES["megatron"], data)
