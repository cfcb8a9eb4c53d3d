"""`RewardModel` / `AsyncRewardModel` against the local server's reward-model signature (NeMo-Aligner),
sync and async: scores and turn indexes, exact wire content, batching, both Aligner variants, and
every way a reward vector can be wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from steerlm.attributes import HELPSTEER
from steerlm.client import SteerLMClient
from steerlm.errors import ConfigurationError, InvalidRequestError, ModelNotFoundError, ServerUnavailableError
from steerlm.reward import AsyncRewardModel, RewardModel, annotation_prompts, to_scores
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(180)]

CONVERSATION = [
    {"role": "system", "content": "not sent"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "It is 4."},
    {"role": "user", "content": "Tell me a joke."},
    {"role": "assistant", "content": "Haha, maybe a pun about numbers: four score and seven years ago, lol!"},
]


@pytest.fixture
def server(reward_server: LocalServer) -> LocalServer:
    return reward_server


@pytest.fixture
def drive(sync_or_async: Any) -> Any:
    return sync_or_async


def model(drive: Any, server: LocalServer, name: str = "reward_model", **kwargs: Any) -> Any:
    kwargs.setdefault("max_retries", 0)
    cls = AsyncRewardModel if drive.mode == "async" else RewardModel
    return drive.track(cls(name, server.http_url, **kwargs))


def expected(conversation: list[dict[str, str]]) -> list[tuple[int, dict[str, int], list[float]]]:
    from steerlm_testing.reward_scorer import reply_of, scripted_rewards

    out = []
    for turn, text in annotation_prompts(conversation):
        raw = [float(np.float32(v)) for v in scripted_rewards(reply_of(text))]
        out.append((turn, dict(to_scores(raw, HELPSTEER).attributes), raw))
    return out


@pytest.mark.parametrize("name", ["reward_model", "reward_model_v0_1"])
def test_scores_every_assistant_turn(drive: Any, server: LocalServer, name: str) -> None:
    scores = drive(model(drive, server, name).score(CONVERSATION))
    assert [(s.turn, dict(s.attributes), list(s.raw.values())) for s in scores] == expected(CONVERSATION)
    assert scores[1]["humor"] == 4 and scores[1]["verbosity"] == 1
    [request] = server.requests(name)
    assert list(request["inputs"]) == ["sentences"]  # no tokens, no add_EOS
    sentences = request["inputs"]["sentences"]
    assert sentences["datatype"] == "BYTES" and sentences["shape"] == [2, 1]
    assert sentences["data"] == [p for _, p in annotation_prompts(CONVERSATION)]
    assert "not sent" not in sentences["data"][0]


def test_batches_split_by_max_batch_size(drive: Any, server: LocalServer) -> None:
    conversations = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "w " * i},
                      {"role": "user", "content": "more"}, {"role": "assistant", "content": "x " * (2 * i)}]
                     for i in range(10)]
    results = drive(model(drive, server).score_batch(conversations))
    assert [[s.raw["verbosity"] for s in turns] for turns in results] == [
        [pytest.approx(i / 10), pytest.approx(2 * i / 10)] for i in range(10)]
    rows = [r["inputs"]["sentences"]["shape"][0] for r in server.requests("reward_model")]
    assert sum(rows) == 20 and max(rows) <= 8 and len(rows) == 3


def test_score_prompts_and_clamping(drive: Any, server: LocalServer) -> None:
    [scores] = drive(model(drive, server).score_prompts(["[[rewards=2.5,3.5,-1,9,0.5,1.5,4.49,0,4.5]]"]))
    assert list(scores.attributes.values()) == [2, 4, 0, 4, 0, 2, 4, 0, 4]
    assert scores.raw["creativity"] == 9.0 and scores.turn is None
    assert drive(model(drive, server).score_prompts([])) == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("[[rewards=1,2,3]]", r"3 value\(s\) per sentence; expected 9"),
        ("[[rewards=1]]", "merge_attributes"),
        ("[[rewards=1,2,3,4,5,6,7,8,9,10]]", r"10 value\(s\) per sentence"),
        ("[[rewards=1,2,3,4,nan,6,7,8,9]]", "non-finite"),
        ("[[raise=scorer exploded]]", "scorer exploded"),
    ],
)
def test_bad_reward_vectors_are_errors_not_labels(drive: Any, server: LocalServer, reply: str,
                                                  message: str) -> None:
    conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": reply}]
    with pytest.raises(InvalidRequestError, match=message):
        drive(model(drive, server).score(conversation))


def test_unknown_model_and_absent_server(drive: Any, server: LocalServer) -> None:
    with pytest.raises(ModelNotFoundError):
        drive(model(drive, server, "no_such_rm", ready_timeout=0.2).score(CONVERSATION))
    cls = AsyncRewardModel if drive.mode == "async" else RewardModel
    with pytest.raises(ServerUnavailableError):
        drive(drive.track(cls(url="http://127.0.0.1:9", ready_timeout=0.2, max_retries=0)).score(CONVERSATION))


def test_a_text_client_pointed_at_the_reward_model_says_so(server: LocalServer) -> None:
    with SteerLMClient("reward_model", server.http_url, profile="Llama2-70B-SteerLM-Chat") as client, \
            pytest.raises(ConfigurationError, match="RewardModel"):
        client.generate("x")
    assert server.requests("reward_model") == []  # refused from the model's signature, nothing sent


def test_conversation_without_assistant_turn(server: LocalServer) -> None:
    from steerlm.errors import PromptError

    with RewardModel(url=server.http_url) as scorer, pytest.raises(PromptError, match="no assistant message"):
        scorer.score([{"role": "user", "content": "q"}])
