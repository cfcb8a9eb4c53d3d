"""The legacy NeMo REST transport against the REST test double, sync and async: wire body, prompt echo
(with and without markers), validation strings, the 128-sentence limit, retries, timeouts, an absent
server, and both framework adapters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.client.settings import ClientSettings
from steerlm.errors import InvalidRequestError, RequestTimeoutError, ServerUnavailableError
from steerlm.params import GenerationParams
from steerlm.prompts import format_prompt
from steerlm.transport.base import FixedInputs, WireRequest
from steerlm.transport.rest import AsyncRestConnection, RestConnection
from steerlm_testing.rest_double import RestDouble

pytestmark = [pytest.mark.timeout(60)]

MODEL = "SteerLM-Llama2-13B"
SAY = "[[say=Hello there!\\n\\u003cextra_id_1>User\\nnext]]"


@pytest.fixture(scope="module")
def double() -> Iterator[RestDouble]:
    with RestDouble() as server:
        yield server


@pytest.fixture(scope="module")
def dropping() -> Iterator[RestDouble]:
    with RestDouble(drop_markers=True) as server:
        yield server


@pytest.fixture
def drive(sync_or_async: Any) -> Any:
    return sync_or_async


def client(drive: Any, double: RestDouble, **kwargs: Any) -> Any:
    cls = AsyncSteerLMClient if drive.mode == "async" else SteerLMClient
    kwargs.setdefault("max_retries", 0)
    return drive.track(cls(MODEL, f"nemo-rest://{double.address}", **kwargs))


def prompt(text: str) -> str:
    return format_prompt([{"role": "user", "content": text}], profile=MODEL)


def test_generate_sends_nemo_json_and_strips_the_echo(drive: Any, double: RestDouble) -> None:
    c = client(drive, double)
    done = drive(c.generate(prompt(SAY), GenerationParams(max_tokens=32, top_k=1, stop=("###",))))
    assert done.text == "Hello there!" and done.finish_reason == "stop"
    body = double.requests[-1]
    assert body == {"sentences": [prompt(SAY)], "tokens_to_generate": 32, "top_k": 1, "greedy": True,
                    "end_strings": ["<extra_id_1>", "quality:", "###"]}


def test_marker_dropping_server(drive: Any, dropping: RestDouble) -> None:
    done = drive(client(drive, dropping).generate(prompt("[[say=Short answer.]]")))
    assert done.text == "Short answer."
    guarded = drive(client(drive, dropping).generate(prompt("[[say=Yes.\\nquality:9 more]]")))
    assert guarded.text == "Yes." and guarded.finish_reason == "stop"  # the 13B card's quality: guard


@pytest.mark.parametrize("profile", [MODEL, "Llama2-70B-SteerLM-Chat"])
def test_marker_dropping_server_leaves_no_trailing_newline(drive: Any, double: RestDouble, dropping: RestDouble,
                                                           profile: str) -> None:
    """NeMo's REST server stops at the end string "<extra_id_1>" and, when its detokenizer drops markers,
    returns "answer\\n": the LF left of the end of turn must not reach the answer."""
    text = format_prompt([{"role": "user", "content": "[[say=Two lines\\nof text.\\n\\u003cextra_id_1>User]]"}],
                         profile=profile)
    for server in (double, dropping):
        with_markers = server is double
        c = drive.track(SteerLMClient(profile, f"nemo-rest://{server.address}", max_retries=0)
                        if drive.mode == "sync" else
                        AsyncSteerLMClient(profile, f"nemo-rest://{server.address}", max_retries=0))
        done = drive(c.generate(text))
        assert done.text == "Two lines\nof text.", (with_markers, done.text)
        sent = server.requests[-1]["sentences"][0]
        assert sent == text  # the prompt went out with its markers either way


def test_batch_keeps_order_and_splits_at_128(drive: Any, double: RestDouble) -> None:
    double.requests.clear()
    prompts = [prompt(f"[[say=answer {i}]]") for i in range(130)]
    results = drive(client(drive, double).batch(prompts, GenerationParams(max_tokens=4)))
    assert [r.text for r in results] == [f"answer {i}" for i in range(130)]
    # The async client sends the two parts concurrently, so their arrival order is not defined.
    assert sorted(len(b["sentences"]) for b in double.requests) == [2, 128]


def test_stream_is_one_chunk(double: RestDouble) -> None:
    with SteerLMClient(MODEL, f"nemo-rest://{double.address}") as c:
        chunks = list(c.stream(prompt(SAY)))
    assert [(c.text, c.finish_reason) for c in chunks] == [("Hello there!", "stop")]


def _raw_request(rows: int, **scalars: Any) -> WireRequest:
    sentences = np.array([[b"x"]] * rows, dtype=np.object_)
    arrays = {k: np.array([[v]] * rows) for k, v in scalars.items()}
    return WireRequest(MODEL, {"sentences": sentences}, FixedInputs(arrays, ("sentences",)))


@pytest.mark.parametrize(
    ("rows", "scalars", "message"),
    [
        (1, {"tokens_to_generate": 0}, "tokens_to_generate must be an integer greater than 0"),
        (1, {"temperature": 0.0}, "temperature must be a positive number less than or equal to 100.0"),
        (129, {}, "Maximum number of sentences is 128"),
    ],
)
def test_refusals_are_invalid_requests(drive: Any, double: RestDouble, rows: int, scalars: dict[str, Any],
                                       message: str) -> None:
    options = ClientSettings("m", f"nemo-rest://{double.address}", timeout=5.0)
    endpoint = options.endpoints[0]
    conn = AsyncRestConnection(endpoint, options) if drive.mode == "async" else RestConnection(endpoint, options)
    with pytest.raises(InvalidRequestError) as info:
        drive(conn.infer(_raw_request(rows, **scalars)))
    assert message in str(info.value)
    assert info.value.status == ("400" if rows > 128 else 200)


def test_retryable_statuses_are_retried(drive: Any, double: RestDouble) -> None:
    double.fail_next(2, 503)
    done = drive(client(drive, double, max_retries=2).generate(prompt("[[say=after retries]]")))
    assert done.text == "after retries"
    double.fail_next(1, 400)
    with pytest.raises(InvalidRequestError):
        drive(client(drive, double, max_retries=2).generate(prompt("[[say=x]]")))


def test_timeout(drive: Any, double: RestDouble) -> None:
    with pytest.raises(RequestTimeoutError):
        drive(client(drive, double, timeout=0.3).generate(prompt("[[sleep=1]]")))


def test_absent_server(drive: Any) -> None:
    gone = RestDouble().start()
    gone.stop()
    with pytest.raises(ServerUnavailableError):
        drive(client(drive, gone, ready_timeout=0.3).generate(prompt("hi")))


def test_adapters_reach_the_rest_server(drive: Any, double: RestDouble) -> None:
    from langchain_steerlm import ChatSteerLM
    from llamaindex_steerlm import SteerLM

    url = f"nemo-rest://{double.address}"
    chat = ChatSteerLM(model=MODEL, url=url, max_retries=0)
    llm = SteerLM(model=MODEL, url=url, max_retries=0)
    if drive.mode == "async":
        assert drive(chat.ainvoke("[[say=from langchain]]")).content == "from langchain"
        assert drive(llm.acomplete("[[say=from llamaindex]]")).text == "from llamaindex"
    else:
        assert chat.invoke("[[say=from langchain]]", quality=3).content == "from langchain"
        assert "quality:3," in double.requests[-1]["sentences"][0]
        assert llm.complete("[[say=from llamaindex]]").text == "from llamaindex"
        assert [c.content for c in chat.stream("[[say=one chunk]]") if c.content] == ["one chunk"]
