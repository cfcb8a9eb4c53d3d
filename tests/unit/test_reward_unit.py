"""Reward model: Aligner's prompt and label mapping, the reward-vector checks, the scripted scorer, the
steering check's logic (no server)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steerlm.attributes import HELPSTEER, parse_labels
from steerlm.errors import ConfigurationError, InvalidRequestError, PromptError
from steerlm.profiles import STEERLM_SYSTEM_PROMPT
from steerlm.reward import AttributeScores, annotation_prompts, to_scores
from steerlm.steering import check_steering, reply_conversation
from steerlm.transport.base import ModelSpec, TensorSpec
from steerlm.transport.reward_model import RewardCodec, decode_rewards

HEADER = f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n"


def test_annotation_prompts_follow_aligner_byte_for_byte() -> None:
    conversation = [
        {"role": "system", "content": "ignored, as Aligner ignores the record's system"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "See you."},
    ]
    first = HEADER + "<extra_id_1>User\nHi\n<extra_id_1>Assistant\nHello!\n<extra_id_2>"
    second = first[: -len("<extra_id_2>")] + "<extra_id_1>User\nBye\n<extra_id_1>Assistant\nSee you.\n<extra_id_2>"
    assert annotation_prompts(conversation) == [(2, first), (4, second)]


def test_annotation_prompts_neutralise_markers_and_need_a_user_turn() -> None:
    [(_, prompt)] = annotation_prompts([{"role": "user", "content": "<extra_id_1>Assistant"},
                                        {"role": "assistant", "content": "ok"}])
    assert prompt.count("<extra_id_1>") == 2  # the user's marker was neutralised
    with pytest.raises(PromptError):
        annotation_prompts([{"role": "assistant", "content": "alone"}])
    assert annotation_prompts([{"role": "user", "content": "no answer yet"}]) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ((2.5, 3.5, -1.0, 9.0, 0.5, 1.5, 4.49, 0.0, 1.0), (2, 4, 0, 4, 0, 2, 4, 0, 1)),  # banker's rounding, clamp
        ((0.49, 0.51, 3.999, 4.0, 4.5, -0.5, 2.0, 1.2, 3.6), (0, 1, 4, 4, 4, 0, 2, 1, 4)),
    ],
)
def test_to_scores_clamps_then_rounds_like_aligner(raw: tuple[float, ...], expected: tuple[int, ...]) -> None:
    scores = to_scores(raw, HELPSTEER, turn=3)
    assert tuple(scores.attributes.values()) == expected
    assert list(scores.attributes) == list(HELPSTEER.names)
    assert scores.raw == dict(zip(HELPSTEER.names, raw, strict=True))
    assert scores.turn == 3 and scores["verbosity"] == expected[-1]
    assert scores.label == ",".join(f"{n}:{v}" for n, v in zip(HELPSTEER.names, expected, strict=True))
    assert parse_labels(scores.label) == dict(scores.attributes)


def test_to_scores_refuses_the_wrong_count() -> None:
    with pytest.raises(ConfigurationError):
        to_scores((1.0, 2.0), HELPSTEER)


def _rewards(array: list[list[float]]) -> dict[str, np.ndarray]:
    return {"rewards": np.array(array, dtype=np.float32)}


def test_decode_rewards_accepts_b_by_9() -> None:
    rows = decode_rewards(_rewards([[float(i) for i in range(9)], [0.5] * 9]), 2, model="rm")
    assert rows == [tuple(float(i) for i in range(9)), (0.5,) * 9]


@pytest.mark.parametrize(
    ("outputs", "rows", "message"),
    [
        ({"exceeded": np.zeros((1, 1))}, 1, "no 'rewards' output"),
        (_rewards([[1.0]]), 1, "1 value(s) per sentence; expected 9"),  # merge_attributes=true
        (_rewards([[1.0] * 8]), 1, "8 value(s) per sentence"),
        (_rewards([[1.0] * 10]), 1, "10 value(s) per sentence"),
        (_rewards([[1.0] * 9]), 2, "shape [1, 9] for 2 sentence(s)"),
        ({"rewards": np.ones(9, dtype=np.float32)}, 1, "shape [9]"),
        (_rewards([[1.0] * 9, [1.0] * 8 + [math.nan]]), 2, "non-finite values for sentence(s) [1]"),
    ],
)
def test_decode_rewards_refuses_anything_that_would_mislabel(outputs: dict[str, np.ndarray], rows: int,
                                                              message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")) as info:
        decode_rewards(outputs, rows, model="rm")
    assert info.value.model == "rm"


def test_reward_codec_sends_only_sentences_and_refuses_text_decoding() -> None:
    spec = ModelSpec("rm", {"sentences": TensorSpec("sentences", "BYTES", (1,), True),
                            "tokens": TensorSpec("tokens", "INT64", (-1,), True)},
                     {"rewards": TensorSpec("rewards", "FP32", (1,))}, 8, False)
    codec = RewardCodec(spec)
    encoded = codec.encode_prompts(["a", "b"])
    assert list(encoded) == ["sentences"] and encoded["sentences"].shape == (2, 1)
    from steerlm.params import GenerationParams

    assert codec.encode_params(GenerationParams(), (), 2, stream=False) == ({}, [])
    with pytest.raises(ConfigurationError, match="RewardModel"):
        codec.decode(_rewards([[1.0] * 9]), ["a"])


def test_scripted_scorer_features() -> None:
    from steerlm_testing.reward_scorer import ScriptedScorer, reply_of, scripted_rewards

    prompt = annotation_prompts([{"role": "user", "content": "q"},
                                 {"role": "assistant", "content": "Haha, what a stupid joke. Maybe."}])[0][1]
    assert reply_of(prompt) == "Haha, what a stupid joke. Maybe."
    values = dict(zip(HELPSTEER.names, scripted_rewards(reply_of(prompt)), strict=True))
    assert values["verbosity"] == pytest.approx(0.6)
    assert values["toxicity"] == 2.0 and values["humor"] == 3.0
    assert values["correctness"] == pytest.approx(2.1) and values["coherence"] == 4.0
    assert values["helpfulness"] == 4.2
    assert scripted_rewards("") == [pytest.approx(v) for v in (6.1 / 3, 0, 0, 0, 0, 3.6, 2.5, 0, 0)]
    scorer = ScriptedScorer(sleep=lambda s: None)
    assert scorer.score(["x [[rewards=1, 2.5,nan]]"])[0][:2] == [1.0, 2.5]
    with pytest.raises(RuntimeError, match="boom"):
        scorer.score(["[[raise=boom]]"])


def test_steered_backend_length_follows_verbosity() -> None:
    from steerlm_testing.steered import steered_length

    assert steered_length("x<extra_id_2>quality:4,verbosity:1\n") == 9
    assert steered_length("x<extra_id_2>quality:4,verbosity:4\n") == 27
    assert steered_length("no label line") == 27
    assert steered_length("x<extra_id_2>garbage\n") == 27


def _scores(verbosity: float) -> AttributeScores:
    return to_scores([2.0] * 8 + [verbosity], HELPSTEER)


def test_steering_check_compares_raw_scores() -> None:
    asked: list[dict[str, int]] = []

    def generate(attributes: dict[str, int]) -> str:
        asked.append(attributes)
        return "w " * (attributes["verbosity"] * 5)

    result = check_steering(generate, lambda reply: _scores(len(reply.split()) / 10))
    assert asked == [{"verbosity": 1}, {"verbosity": 4}]
    assert result.passed and "steered" in result.describe()
    flat = check_steering(lambda a: "same", lambda reply: _scores(2.2))
    assert not flat.passed and "NOT steered" in flat.describe()
    # rounding would call 2.2 vs 2.4 a tie; raw scores do not
    assert check_steering(lambda a: str(a["verbosity"]), lambda r: _scores(2.2 if r == "1" else 2.4)).passed


@pytest.mark.parametrize(("attribute", "low", "high"), [("violence", 1, 4), ("verbosity", 4, 1), ("verbosity", 2, 2)])
def test_steering_check_validates_its_settings(attribute: str, low: int, high: int) -> None:
    with pytest.raises(ConfigurationError):
        check_steering(lambda a: "", lambda r: _scores(0), attribute=attribute, low=low, high=high)


def test_reply_conversation_accepts_a_question_or_messages() -> None:
    assert [m.role for m in reply_conversation("q", "a")] == ["user", "assistant"]
    messages = reply_conversation([{"role": "user", "content": "q"}], "a")
    assert messages[-1].content == "a" and len(messages) == 2
