"""Unit tests of the scripted test model (no server) and of the NeMo-deploy request decoding."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerlm.serve.backend import Backend, SamplingRequest, ServerFault
from steerlm_testing.directives import parse_directives, tokenize, unescape
from steerlm_testing.scripted import VOCABULARY, ScriptedBackend, ScriptedError
from steerlm_testing.scripted_tools import build_arguments, last_user_turn


class Fatal(Exception):
    pass


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _fatal() -> None:
    raise Fatal


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def model(recorder: Recorder) -> ScriptedBackend:
    return ScriptedBackend(sleep=recorder.sleep, on_fatal=_fatal)


def params(**kw: object) -> SamplingRequest:
    return SamplingRequest(**kw)  # type: ignore[arg-type]


def chat(user: str, system: str = "") -> str:
    return f"<extra_id_0>System\n{system}\n<extra_id_1>User\n{user}\n<extra_id_1>Assistant\n"


# ----- default text ---------------------------------------------------------------------------------
def test_is_a_backend(model: ScriptedBackend) -> None:
    assert isinstance(model, Backend)


def test_default_is_exactly_max_tokens_words_from_the_vocabulary(model: ScriptedBackend) -> None:
    [text] = model.generate(["Hello there"], params(max_tokens=7))
    words = text.split(" ")
    assert text.endswith(" ") and len(words) == 8 and words[-1] == ""
    assert all(w in VOCABULARY for w in words[:-1])


def test_default_length_is_nemo_default_64(model: ScriptedBackend) -> None:
    [text] = model.generate(["Hello"], SamplingRequest())
    assert len(text.split()) == 64


def test_default_is_deterministic_per_prompt(model: ScriptedBackend) -> None:
    first = model.generate(["a", "b"], params(max_tokens=12))
    again = ScriptedBackend().generate(["a", "b"], params(max_tokens=12))
    assert first == again
    assert first[0] != first[1]


def test_zero_max_tokens_is_an_error(model: ScriptedBackend) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        model.generate(["x"], params(max_tokens=0))


# ----- directives -----------------------------------------------------------------------------------
def test_say_emits_the_text_with_escapes(model: ScriptedBackend) -> None:
    [text] = model.generate([chat(r"[[say=Line one\nLine\ttwo \\ end]]")], params(max_tokens=50))
    assert text == "Line one\nLine\ttwo \\ end"


def test_say_honours_max_tokens(model: ScriptedBackend) -> None:
    [text] = model.generate(["[[say=one two three four]]"], params(max_tokens=2))
    assert text == "one two "


def test_last_directive_wins(model: ScriptedBackend) -> None:
    prompt = chat("[[say=first]]") + "old answer\n" + chat("[[say=second]]")
    assert model.generate([prompt], params()) == ["second"]


def test_end_of_turn_marker_always_stops(model: ScriptedBackend) -> None:
    prompt = r"[[say=Answer.\n\u003cextra_id_1>User\nmore text]]"
    assert model.generate([prompt], params()) == ["Answer.\n<extra_id_1>"]


def test_echo_is_one_json_token_with_escaped_markers(model: ScriptedBackend) -> None:
    prompt = chat("[[echo]] hi")
    sampling = params(max_tokens=1, top_k=5, seed=9, stop_words=("<extra_id_1>",),
                      extras={"task_id": "t"})
    [text] = model.generate([prompt], sampling)
    assert "<" not in text
    payload = json.loads(text)
    assert payload["prompt"] == prompt
    assert payload["params"]["top_k"] == 5 and payload["params"]["seed"] == 9
    assert payload["params"]["stop_words"] == ["<extra_id_1>"]
    assert payload["params"]["extras"] == {"task_id": "t"}


def test_error_is_a_plain_exception_and_raise_a_server_fault(model: ScriptedBackend) -> None:
    with pytest.raises(ScriptedError, match=r"^disk full$"):
        model.generate(["[[error=disk full]]"], params())
    with pytest.raises(ServerFault, match=r"^boom$"):
        model.generate(["[[raise=boom]]"], params())


def test_sleep_and_delay(model: ScriptedBackend, recorder: Recorder) -> None:
    model.generate(["[[sleep=2]] [[delay=0.5]]"], params(max_tokens=4))
    assert recorder.sleeps == [2.0, 2.0]  # sleep first, then 4 tokens x 0.5 s
    recorder.sleeps.clear()
    list(model.stream(["[[delay=0.25]]"], params(max_tokens=3)))
    assert recorder.sleeps == [0.25, 0.25, 0.25]


def test_malformed_number_is_an_error(model: ScriptedBackend) -> None:
    with pytest.raises(ValueError, match="needs a number"):
        model.generate(["[[delay=soon]]"], params())


def test_unknown_directives_are_ignored() -> None:
    assert parse_directives("[[nope=1]] [[echo]]").echo is True


# ----- stop words -----------------------------------------------------------------------------------
def test_stop_word_is_kept_and_ends_generation(model: ScriptedBackend) -> None:
    [text] = model.generate(["[[say=alpha beta STOP gamma]]"], params(stop_words=("STOP",)))
    assert text == "alpha beta STOP "


def test_stop_word_across_tokens(model: ScriptedBackend) -> None:
    [text] = model.generate([r"[[say=Hi\nUser: next]]"], params(stop_words=("\nUser:",)))
    assert text == "Hi\nUser: "


def test_stop_word_in_default_text(model: ScriptedBackend) -> None:
    [full] = model.generate(["seed text"], params(max_tokens=20))
    third = full.split(" ")[2]
    [cut] = model.generate(["seed text"], params(max_tokens=20, stop_words=(third,)))
    assert full.startswith(cut) and cut.split(" ")[-2] == third and len(cut) <= len(full)


# ----- streaming ------------------------------------------------------------------------------------
def test_stream_is_cumulative_and_ends_with_the_unary_text(model: ScriptedBackend) -> None:
    steps = list(model.stream(["p"], params(max_tokens=6)))
    assert len(steps) == 6
    for before, after in itertools.pairwise(steps):
        assert after[0].startswith(before[0]) and len(after[0]) > len(before[0])
    assert steps[-1] == model.generate(["p"], params(max_tokens=6))


def test_stream_rows_move_in_lockstep(model: ScriptedBackend) -> None:
    steps = list(model.stream(["[[say=a b c]]", "[[say=x]]"], params()))
    assert steps == [["a ", "x"], ["a b ", "x"], ["a b c", "x"]]


def test_stream_fail_after(model: ScriptedBackend) -> None:
    received = []
    with pytest.raises(Fatal):
        for step in model.stream(["[[stream_fail_after=2]]"], params(max_tokens=10)):
            received.append(step)
    assert len(received) == 2


def test_unary_ignores_stream_fail_after(model: ScriptedBackend) -> None:
    assert len(model.generate(["[[stream_fail_after=0]]"], params(max_tokens=3))[0].split()) == 3


def test_stream_raise_after(model: ScriptedBackend) -> None:
    from steerlm.serve.backend import ServerFault

    received = []
    with pytest.raises(ServerFault, match="failed on purpose after 2 tokens"):
        for step in model.stream(["[[say=a b c d]] [[stream_raise_after=2]]"], params(max_tokens=10)):
            received.append(step)
    assert received == [["a "], ["a b "]]
    assert model.generate(["[[say=a b c d]] [[stream_raise_after=0]]"], params(max_tokens=10)) == ["a b c d"]


# ----- tools ----------------------------------------------------------------------------------------
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "optional": {"type": "boolean"},
        },
        "required": ["city", "days", "unit"],
    },
}


def _tool_prompt(user: str) -> str:
    from steerlm import tools
    system = tools.tool_instructions([tools.ToolSpec(**WEATHER)])
    return chat(user, system=system)


def test_tool_call_for_the_first_offered_tool(model: ScriptedBackend) -> None:
    from steerlm import tools
    [text] = model.generate([_tool_prompt("What is the weather in Paris?")], params(max_tokens=5))
    parsed = tools.parse_tool_reply(text)
    assert [(c.name, dict(c.arguments)) for c in parsed.tool_calls] == [
        ("get_weather", {"city": "Paris", "days": 3, "unit": "celsius"})
    ]


def test_tool_result_gives_a_final_answer(model: ScriptedBackend) -> None:
    from steerlm import tools
    turn = f"{tools.TOOL_RESULT_PREFIX} (get_weather, call 1):\nSunny, 21 C\nmore"
    [text] = model.generate([_tool_prompt(turn)], params())
    assert text == "Final answer: Sunny, 21 C"


def test_build_arguments_by_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "number"}, "flag": {"type": "boolean"}, "tags": {"type": "array",
                                                                        "items": {"type": "string"}},
            "inner": {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]}, "name": {"type": "string"},
        },
        "required": ["n", "flag", "tags", "inner", "maybe", "name", "missing"],
    }
    words = iter(["w1", "w2"])
    assert build_arguments(schema, words) == {
        "n": 1.5, "flag": True, "tags": ["w1"], "inner": {"k": 3}, "maybe": 3, "name": "w2"}


def test_last_user_turn() -> None:
    prompt = chat("first") + "answer\n" + chat("second\nline")
    assert last_user_turn(prompt) == "second\nline"
    assert last_user_turn("no markers") == "no markers"


# ----- tokenizer ------------------------------------------------------------------------------------
def test_tokenize_examples() -> None:
    assert tokenize("Hi there\n<extra_id_1>User") == ["Hi ", "there", "\n", "<extra_id_1>", "User"]
    assert unescape(r"a\u003cb\\n") == "a<b\\n"


@given(st.text())
def test_tokenize_round_trips(text: str) -> None:
    assert "".join(tokenize(text)) == text


# ----- NeMo deploy decoding -------------------------------------------------------------------------
def _bytes(*rows: str) -> np.ndarray[Any, Any]:
    return np.array([[r.encode()] for r in rows], dtype=np.object_)


def test_decode_defaults_and_first_row() -> None:
    from steerlm.serve import nemo_deploy as nemo
    inputs = {"prompts": _bytes("a", "b"), "top_k": np.array([[4], [9]], dtype=np.int64),
              "output_generation_logits": np.array([[True], [True]])}
    prompts, sampling, flags = nemo.decode_request(inputs, nemo.VARIANTS["current"])
    assert prompts == ["a", "b"]
    assert (sampling.max_tokens, sampling.top_k, sampling.top_p, sampling.temperature) == (64, 4, 0.0, 1.0)
    assert flags == {"output_generation_logits": True, "output_context_logits": False}


def test_decode_legacy_length_and_csv_stop_words() -> None:
    from steerlm.serve import nemo_deploy as nemo
    inputs = {"prompts": _bytes("a"), "max_output_token": np.array([[5]], dtype=np.int64),
              "stop_words_list": _bytes('"\n<extra_id_1>","a,b",c')}
    _, sampling, _ = nemo.decode_request(inputs, nemo.VARIANTS["legacy_2310"])
    assert sampling.max_tokens == 5
    assert sampling.stop_words == ("\n<extra_id_1>", "a,b", "c")


def test_decode_unquoted_newline_fails_like_nemo() -> None:
    from steerlm.serve import nemo_deploy as nemo
    inputs = {"prompts": _bytes("a"), "stop_words_list": _bytes("\n<extra_id_1>")}
    with pytest.raises(Exception, match="new-line"):
        nemo.decode_request(inputs, nemo.VARIANTS["v2_0"])


def test_encode_outputs_shape() -> None:
    from steerlm.serve import nemo_deploy as nemo
    out = nemo.encode_texts(["x", "ü"])
    assert out.shape == (2, 1) and out[1, 0] == "ü".encode()
