"""Framework hooks for the reward model against the local server ("reward" preset: the reward model and
a scripted chat model whose reply length follows ``verbosity``): the LangChain scorer runnable, the
LlamaIndex evaluator, and the steering check through both adapters, sync and async."""

from __future__ import annotations

from typing import Any

import pytest

from steerlm.errors import ConfigurationError
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(180)]

CHAT = "Llama2-70B-SteerLM-Chat"
QUESTION = "Describe the sea."


@pytest.fixture
def server(reward_server: LocalServer) -> LocalServer:
    return reward_server


@pytest.fixture
def drive(sync_or_async: Any) -> Any:
    return sync_or_async


def test_langchain_scorer_runnable(drive: Any, server: LocalServer) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from langchain_steerlm.evaluation import SteerLMRewardScorer

    scorer = SteerLMRewardScorer(url=server.http_url)
    call = scorer.ainvoke if drive.mode == "async" else scorer.invoke
    scores = drive(call({"input": "Why?", "output": AIMessage("Haha, what a joke. lol")}))
    assert scores["humor"] == 4 and scores["verbosity"] == 0  # 0.5 rounds to even
    assert scores["raw"]["verbosity"] == pytest.approx(0.5) and scores["label"].startswith("quality:")
    as_messages = drive(call([HumanMessage("Why?"), AIMessage("Haha, what a joke. lol")]))
    assert as_messages == scores
    sentence = server.last_request("reward_model")["inputs"]["sentences"]["data"][-1]
    assert sentence.endswith("<extra_id_1>User\nWhy?\n<extra_id_1>Assistant\nHaha, what a joke. lol\n<extra_id_2>")
    with pytest.raises(ConfigurationError):
        scorer.invoke({"output": "no input"})


def test_llamaindex_evaluator(drive: Any, server: LocalServer) -> None:
    from llamaindex_steerlm.evaluation import SteerLMAttributeEvaluator

    evaluator = SteerLMAttributeEvaluator(url=server.http_url, attribute="verbosity", threshold=2)
    call = evaluator.aevaluate if drive.mode == "async" else evaluator.evaluate
    short = drive(call(query="q", response="Two words."))
    long = drive(call(query="q", response="word " * 30 + "end."))
    assert (short.score, short.passing, long.score, long.passing) == (0.0, False, 3.0, True)
    assert long.feedback.endswith("verbosity:3") and long.query == "q"
    untested = SteerLMAttributeEvaluator(url=server.http_url)
    assert drive((untested.aevaluate if drive.mode == "async" else untested.evaluate)(
        query="q", response="Five words make it helpful.")).passing is None
    with pytest.raises(ConfigurationError):
        SteerLMAttributeEvaluator(attribute="violence")


def test_steering_check_langchain(drive: Any, server: LocalServer) -> None:
    from langchain_steerlm import ChatSteerLM
    from langchain_steerlm.evaluation import SteerLMRewardScorer, asteering_check, steering_check

    chat = ChatSteerLM(model=CHAT, url=server.grpc_url, max_tokens=64)
    scorer = SteerLMRewardScorer(url=server.http_url)
    check = asteering_check if drive.mode == "async" else steering_check
    result = drive(check(chat, scorer, QUESTION))
    assert result.passed, result.describe()
    assert len(result.low_reply.split()) == 9 and len(result.high_reply.split()) == 27
    assert result.low_scores["verbosity"] < result.high_scores["verbosity"]
    labels = [e["inputs"]["prompts"]["data"][0].rsplit("<extra_id_2>", 1)[1] for e in server.requests(CHAT)[-2:]]
    assert [lab.split("verbosity:")[1][0] for lab in labels] == ["1", "4"]
    ignored = drive(check(chat, scorer, "[[say=The same answer either way.]]"))
    assert not ignored.passed and "NOT steered" in ignored.describe()


def test_steering_check_llamaindex(drive: Any, server: LocalServer) -> None:
    from llamaindex_steerlm import SteerLM
    from llamaindex_steerlm.evaluation import SteerLMAttributeEvaluator, asteering_check, steering_check

    llm = SteerLM(model=CHAT, url=server.grpc_url, max_tokens=64)
    evaluator = SteerLMAttributeEvaluator(url=server.http_url)
    check = asteering_check if drive.mode == "async" else steering_check
    result = drive(check(llm, evaluator, QUESTION, low=0, high=3))
    assert result.passed and (result.low, result.high) == (0, 3)
    assert len(result.low_reply.split()) == 3 and len(result.high_reply.split()) == 21


def test_evaluators_close_their_async_reward_clients_with_the_loop(server: LocalServer) -> None:
    import asyncio

    from langchain_steerlm.evaluation import SteerLMRewardScorer
    from llamaindex_steerlm.evaluation import SteerLMAttributeEvaluator
    from steerlm.reward import AsyncRewardModel

    closed: list[AsyncRewardModel] = []
    original = AsyncRewardModel.close

    async def spy(self: AsyncRewardModel) -> None:  # a spy: the real close still runs
        closed.append(self)
        await original(self)

    scorer = SteerLMRewardScorer(url=server.http_url)
    evaluator = SteerLMAttributeEvaluator(url=server.http_url, attribute="verbosity")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AsyncRewardModel, "close", spy)
        for _ in range(2):  # each asyncio.run is a new loop: a new client, closed when the loop ends
            assert asyncio.run(scorer.ainvoke({"input": "q", "output": "Two words."}))["verbosity"] == 0
            assert asyncio.run(evaluator.aevaluate(query="q", response="Two words.")).score == 0.0
    assert len(closed) == 4 and len(set(map(id, closed))) == 4
    assert len(scorer._clients) == 0 and len(evaluator._clients) == 0
