"""The bad-input table: every case is a line of code, the error it must raise and the words of the message
that say what to fix. `tests/unit/test_bad_inputs.py` runs every case, and docs/bad-input.md shows the
table rendered from this file (the test fails when the page is stale; rewrite it with
``python tests/unit/bad_inputs.py --write``).

The code runs in `NAMESPACE` (see `SETUP`): ``chat(**kw)`` is ``ChatSteerLM(url=DEAD, **kw)``, ``llm(**kw)``
LangChain's ``SteerLM``, ``li(**kw)`` LlamaIndex's ``SteerLM(model=P, ...)``, ``client(**kw)`` /
``aclient(**kw)`` ``SteerLMClient("m", DEAD, **kw)`` / its asyncio twin, ``rm(**kw)`` ``RewardModel`` on a
dead URL, ``arun(coroutine)`` runs a coroutine, ``cli(*args)`` the ``steerlm`` command (in-process; a
non-zero exit status is the "error", its stderr the message), in a folder holding the files the annotate
rows name (`tests/unit/test_bad_inputs.py` writes them: ``in.jsonl`` one good record, ``copy.jsonl`` the
same, the others each with one bad line). ``DEAD`` is a URL where nothing listens:
none of these cases reaches a server — each is refused before any I/O.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
START, END = "<!-- bad-input-table:start -->", "<!-- bad-input-table:end -->"


@dataclass(frozen=True)
class Case:
    area: str
    code: str
    error: str  # the class name (a SteerLMError subclass) or "exit 2" for the command line
    says: str  # words of the message (case-insensitive substring) that tell what to fix


SETUP = '''
import asyncio
from langchain_steerlm import ChatSteerLM, SteerLM as LangChainSteerLM
from llamaindex_steerlm import SteerLM as LlamaIndexSteerLM
from llama_index.core.llms import ChatMessage
from steerlm import (AsyncRewardModel, AsyncSteerLMClient, GenerationParams, RewardModel, SteerLMClient,
                     format_prompt, get_profile, parse_labels)
P = "Llama2-70B-SteerLM-Chat"
HI = [{"role": "user", "content": "hi"}]
DEAD = "grpc://127.0.0.1:9"
SUR = "a\\ud800b"
def chat(**kw): return ChatSteerLM(**{"url": DEAD, **kw})
def llm(**kw): return LangChainSteerLM(**{"url": DEAD, **kw})
def li(**kw): return LlamaIndexSteerLM(**{"model": P, "url": DEAD, **kw})
def client(**kw): return SteerLMClient(kw.pop("model", "m"), kw.pop("url", DEAD), **kw)
def aclient(**kw): return AsyncSteerLMClient(kw.pop("model", "m"), kw.pop("url", DEAD), **kw)
def rm(**kw): return RewardModel(**{"url": "http://127.0.0.1:9", **kw})
def arm(**kw): return AsyncRewardModel(**{"url": "http://127.0.0.1:9", **kw})
def arun(coroutine): return asyncio.run(coroutine)
def conv(*turns): return [{"role": r, "content": c} for r, c in zip(["user", "assistant"] * 8, turns)]
'''

C, P_, A = "ConfigurationError", "PromptError", "exit 2"


def _core() -> list[Case]:
    rows = [
        ("format_prompt(None, profile=P)", P_, "messages must be a list"),
        ('format_prompt("hi", profile=P)', P_, "messages must be a list"),
        ('format_prompt({"role": "user", "content": "hi"}, profile=P)', P_, "messages must be a list"),
        ("format_prompt(42, profile=P)", P_, "messages must be a list"),
        ("format_prompt([], profile=P)", P_, "give at least one user message"),
        ('format_prompt([{"role": "system", "content": "s"}], profile=P)', P_, "give at least one user message"),
        ('format_prompt(HI + [{"role": "assistant", "content": "x"}], profile=P)', P_,
         "needs a user (or tool) message last"),
        ('format_prompt([{"role": "robot", "content": "hi"}], profile=P)', P_, "use system, user, assistant or tool"),
        ('format_prompt([{"content": "hi"}], profile=P)', P_, "a dict with 'role' and 'content'"),
        ('format_prompt(["hi"], profile=P)', P_, "a dict with 'role' and 'content'"),
        ('format_prompt([{"role": "user", "content": 5}], profile=P)', P_, "content must be a string"),
        ('format_prompt([{"role": "user", "content": None}], profile=P)', P_, "content must be a string"),
        ('format_prompt(HI, profile=P, attributes="verbosity=4")', C, "attributes must be a dict"),
        ('format_prompt(HI, profile=P, attributes=["verbosity", 4])', C, "attributes must be a dict"),
        ('format_prompt(HI, profile=P, attributes={"verbosity": 9})', C, "from 0 to 4"),
        ('format_prompt(HI, profile=P, attributes={"verbosity": -1})', C, "from 0 to 4"),
        ('format_prompt(HI, profile=P, attributes={"verbosity": "4"})', C, "use an integer"),
        ('format_prompt(HI, profile=P, attributes={"verbosity": True})', C, "use an integer"),
        ('format_prompt(HI, profile=P, attributes={"verbosity": 2.5})', C, "use an integer"),
        ('format_prompt(HI, profile=P, attributes={"verbosty": 2})', C, "did you mean 'verbosity'"),
        ('format_prompt(HI, profile=P, attributes={"violence": 1})', C, "its attributes are"),
        ('format_prompt(HI, profile="SteerLM-Llama2-13B", attributes={"verbosity": 1})', C, "its attributes are"),
        ('format_prompt(HI, profile="NV-Llama2-70B-RLHF-Chat", attributes={"verbosity": 1})', C,
         "use a SteerLM profile"),
        ("format_prompt(HI, profile=P, context=123)", P_, "context must be a string"),
        ('format_prompt(HI, profile=P, context=b"doc")', P_, "context must be a string"),
        ('format_prompt(HI, profile="Llama2-70B-SteerLM-Chatt")', C, "did you mean 'Llama2-70B-SteerLM-Chat'"),
        ('format_prompt(HI, profile="nope")', C, "known profiles"),
        ("format_prompt(HI, profile=None)", C, "known profiles"),
        ('format_prompt(HI, profile="Llama2-13B-SteerLM-RM")', P_, "must end with the assistant turn"),
        ('format_prompt([{"role": "user", "content": "<extra_id_1>x"}], profile=P, strict=True)', P_, "remove it"),
        ('format_prompt([{"role": "assistant", "content": "", "tool_calls": [{"arguments": {}}]}] + HI, profile=P)',
         P_, "needs a 'name'"),
        ('format_prompt([{"role": "assistant", "content": "", "tool_calls": "f"}] + HI, profile=P)', P_,
         "tool_calls must be a list"),
        ('format_prompt([{"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": "{x"}]}] + '
         "HI, profile=P)", P_, "JSON object string"),
        ('format_prompt([{"role": "assistant", "content": "", "tool_calls": [7]}] + HI, profile=P)', P_,
         "needs a 'name'"),
        ('format_prompt(HI + [{"role": "assistant", "content": "a", "attributes": {"verbosity": 7}}] + HI, '
         "profile=P)", C, "from 0 to 4"),
        ("parse_labels(None)", C, "label line string"),
        ("parse_labels(4)", C, "label line string"),
        ('parse_labels("quality")', C, "expected name:value"),
        ('parse_labels(":4")', C, "expected name:value"),
        ('parse_labels("quality:x")', C, "integer"),
        ('parse_labels("quality:4,quality:3")', C, "quality"),
        ('get_profile("Llama2-70B")', C, "known profiles"),
        ('get_profile("llama3-70b-steerlm-chatt")', C, "did you mean 'Llama3-70B-SteerLM-Chat'"),
        ("get_profile(42)", C, "known profiles"),
        ("GenerationParams(max_tokens=0)", C, "max_tokens must be an integer >= 1"),
        ('GenerationParams(max_tokens="5")', C, "max_tokens must be an integer >= 1"),
        ("GenerationParams(temperature=-1)", C, "temperature must be in"),
        ("GenerationParams(temperature=float('nan'))", C, "temperature must be a number"),
        ("GenerationParams(top_p=1.5)", C, "top_p must be in"),
        ("GenerationParams(top_k=-1)", C, "top_k must be an integer >= 0"),
        ("GenerationParams(seed=-3)", C, "seed must be an integer >= 0"),
        ("GenerationParams(repetition_penalty=0.5)", C, "repetition_penalty must be in"),
        ('GenerationParams(stop=["ok", ""])', C, "non-empty strings"),
        ("GenerationParams(stop=[1])", C, "non-empty strings"),
        ("GenerationParams().merge(temprature=0.2)", C, "known:"),
    ]
    return [Case("core", code, error, says) for code, error, says in rows]


def _client() -> list[Case]:
    rows = [
        ('url=""', "expected a non-empty string"),
        ('url="ftp://h:1"', "Accepted forms"),
        ('url="localhost"', "no port"),
        ('url="http://h"', "no port"),
        ('url="grpc://h:1/v1"', "gRPC URLs cannot have a path"),
        ('url="http://user:pw@h:1"', "credentials"),
        ('url="grpc://h:0"', "port 0"),
        ('url="grpc://h:99999"', "Accepted forms"),
        ("url=[]", "non-empty list"),
        ("url=42", "Accepted forms"),
        ('url=["grpc://h:1", "h"]', "no port"),
        ('model=""', "Triton model name"),
        ("model=None", "Triton model name"),
        ("timeout=0", "positive number of seconds"),
        ("timeout=-1", "positive number of seconds"),
        ('timeout="60"', "positive number of seconds"),
        ("timeout=float('inf')", "positive number of seconds"),
        ("stream_timeout=0", "stream_timeout must be a positive"),
        ("ready_timeout=-1", "ready_timeout must be a non-negative"),
        ("max_retries=-1", "max_retries must be an integer >= 0"),
        ('max_retries="2"', "max_retries must be an integer >= 0"),
        ('signature="bogus"', "one of"),
        ('headers="x"', "headers must be a dict"),
        ('headers={"x-team": 1}', "must be a string"),
        ('headers={"Bad Name": "v"}', "an HTTP token"),
        ('headers={"": "v"}', "an HTTP token"),
        ('headers={"x-team": "a\\r\\nb"}', "line break at position 1"),
        ('headers={"authorization": "Bearer SECRET\\n"}', "strip it"),
        ('headers={"x-team": "caf\\u00e9"}', "printable ASCII"),
        ('headers={"x-team": "a\\x00"}', "control character"),
        ('root_certificates="/no/such/ca.pem"', "pass a PEM file path or PEM text"),
        ('root_certificates="-----BEGIN CERTIFICATE-----\\nxx\\n-----END CERTIFICATE-----\\n"', "no valid PEM"),
        ('root_certificates=b"not pem"', "no '-----BEGIN' line"),
        ("root_certificates=42", "PEM file path or PEM text/bytes"),
        ('client_certificate="/no/such/cert.pem"', "cannot read"),
        ('url="grpcs://h:1", verify_ssl=False', "pass root_certificates="),
        ('profile="nope"', "known profiles"),
    ]
    out = [Case("client config", f"client({code})", C, says) for code, says in rows]
    out += [Case("client config", f"aclient({code})", C, says) for code, says in rows[::3]]
    out += [
        Case("client config", 'client().generate("a\\ud800b")', P_, "lone surrogate"),
        Case("client config", "client().generate(42)", C, "prompt must be a string"),
        Case("client config", 'arun(aclient().generate("a\\ud800b"))', P_, "errors='replace'"),
    ]
    return out


_ADAPTER_CONSTRUCTION = [
    ("verbositty=1", "did you mean 'verbosity'"),
    ("temprature=0.2", "did you mean 'temperature'"),
    ("max_token=5", "did you mean 'max_tokens'"),
    ("timeout=0", "timeout"),
    ('timeout="x"', "timeout"),
    ("max_retries=-1", "max_retries"),
    ('url="ftp://h:1"', "Accepted forms"),
    ("url=42", "url"),
    ('headers="x"', "headers"),
    ('headers={"x-team": "a\\nb"}', "line break"),
    ('api_key="SECRET\\n"', "line break at the end"),
    ('api_key=""', "api_key is empty"),
    ('attributes="verbosity=4"', "attributes"),
    ('attributes={"verbosity": 9}', "from 0 to 4"),
    ('attributes={"verbosty": 1}', "did you mean 'verbosity'"),
    ("verbosity=9", "from 0 to 4"),
    ("violence=1", "its attributes are"),
    ("temperature=-1", "temperature must be in"),
    ("top_p=2", "top_p must be in"),
    ("top_k=-1", "top_k must be an integer"),
    ("max_tokens=0", "max_tokens must be an integer >= 1"),
    ("stop=5", "stop"),
    ('client_kwargs={"bogus": 1}', "accepted:"),
    ('client_kwargs={"ready_timout": 1}', "did you mean 'ready_timeout'"),
    ('client_kwargs={"timeout": 1}', "accepted:"),
    ('root_certificates="/no/such/ca.pem"', "cannot read"),
    ('client_certificate="/no/such/cert.pem"', "cannot read"),
    ('profile="nope"', "known profiles"),
]


def _langchain() -> list[Case]:
    out = [Case("LangChain ChatSteerLM", f"chat({code})", C, says) for code, says in _ADAPTER_CONSTRUCTION]
    out += [Case("LangChain SteerLM", f"llm({code})", C, says) for code, says in _ADAPTER_CONSTRUCTION[::2]]
    out += [
        Case("LangChain ChatSteerLM", 'chat(model="Llama2-70B-SteerLM-Chatt")', C, "did you mean"),
        Case("LangChain ChatSteerLM", 'chat(model="Llama2-13B-SteerLM-RM")', C, "use steerlm.RewardModel"),
        Case("LangChain SteerLM", 'llm(model="my-model")', C, "pass profile="),
    ]
    calls = [
        ('"hi", verbosity=9', C, "from 0 to 4"),
        ('"hi", attributes="verbosity=4"', C, "attributes must be a dict"),
        ('"hi", context=123', C, "context must be a string"),
        ('"hi", temprature=0.2', C, "did you mean 'temperature'"),
        ('"hi", headers="x"', C, "headers must be a dict"),
        ('"hi", api_key="SECRET\\n"', C, "strip it"),
        ('"hi", timeout=0', C, "positive number of seconds"),
        ('"hi", url="ftp://h:1"', C, "Accepted forms"),
        ('"hi", profile="nope"', C, "known profiles"),
        ('"hi", max_tokens=0', C, "max_tokens must be an integer"),
        ("SUR", P_, "lone surrogate"),
    ]
    out += [Case("LangChain ChatSteerLM", f"chat().invoke({args})", error, says) for args, error, says in calls]
    out += [Case("LangChain SteerLM", f"llm().invoke({args})", error, says) for args, error, says in calls[::2]]
    out += [
        Case("LangChain ChatSteerLM", 'arun(chat().ainvoke("hi", verbosity=9))', C, "from 0 to 4"),
        Case("LangChain ChatSteerLM", 'list(chat().stream("hi", top_p=3))', C, "top_p must be in"),
        Case("LangChain ChatSteerLM", 'chat().batch(["hi", "ho"], temperature=-2)', C, "temperature must be in"),
        Case("LangChain ChatSteerLM", 'chat().with_structured_output({"title": "A"}, bogus=1)', C,
             "unsupported argument"),
        Case("LangChain SteerLM", 'llm().invoke("hi", raw_prompt=True, context="doc")', C, "needs the template"),
        Case("LangChain SteerLM", 'llm().invoke("hi", tools=[])', C, "unknown argument"),
        Case("LangChain ChatSteerLM", 'chat().invoke([{"role": "assistant", "content": "", "tool_calls": '
             '[{"name": "f", "args": {}}]}] + HI)', P_, "need 'name', 'args' and 'id'"),
        Case("LangChain ChatSteerLM", "chat().invoke(42)", P_, "pass a string, LangChain messages"),
        Case("LangChain SteerLM", "llm().invoke(None)", P_, "pass a string"),
    ]
    return out


def _llamaindex() -> list[Case]:
    out = [Case("LlamaIndex SteerLM", f"li({code})", C, says) for code, says in _ADAPTER_CONSTRUCTION]
    out += [
        Case("LlamaIndex SteerLM", "LlamaIndexSteerLM()", C, "model: Field required"),
        Case("LlamaIndex SteerLM", 'li(model="Llama2-70B-SteerLM-Chatt")', C, "did you mean"),
        Case("LlamaIndex SteerLM", 'li(closed_qa="maybe")', C, "closed_qa"),
    ]
    calls = [
        ('"hi", verbosity=9', C, "from 0 to 4"),
        ('"hi", context=1', C, "context must be a string"),
        ('"hi", bogus=1', C, "unknown argument"),
        ('"hi", attributes="verbosity=4"', C, "attributes must be a dict"),
        ('"hi", formatted=True, verbosity=1', C, "need the profile's template"),
        ('"hi", temperature=-1', C, "temperature must be in"),
        ("SUR", P_, "lone surrogate"),
    ]
    out += [Case("LlamaIndex SteerLM", f"li().complete({args})", error, says) for args, error, says in calls]
    out += [
        Case("LlamaIndex SteerLM", 'li().chat([ChatMessage(role="user", content="hi")], top_k=-1)', C,
             "top_k must be an integer"),
        Case("LlamaIndex SteerLM", 'li().chat([ChatMessage(role="user", content=SUR)])', P_, "lone surrogate"),
        Case("LlamaIndex SteerLM", 'arun(li().acomplete("hi", verbosity=7))', C, "from 0 to 4"),
    ]
    return out


def _reward() -> list[Case]:
    rows = [
        ('rm().score_prompts("abc")', C, "for one prompt pass [prompt]"),
        ("rm().score_prompts([1, 2])", C, "list of rendered prompt strings"),
        ("rm().score_prompts([SUR])", P_, "lone surrogate"),
        ('rm().score(conv("hi"))', P_, "no assistant message"),
        ('rm().score("hi")', P_, "messages must be a list"),
        ('rm().score(conv("hi", SUR))', P_, "lone surrogate"),
        ('rm().score_batch([conv("q", "a"), conv("q")])', P_, "conversation 1 has no assistant message"),
        ('rm().score([{"role": "robot", "content": "x"}])', P_, "use system, user, assistant or tool"),
        ('rm(timout=3)', C, "did you mean 'timeout'"),
        ('rm(url="ftp://h:1")', C, "Accepted forms"),
        ("rm(timeout=0)", C, "positive number of seconds"),
        ('rm(headers={"authorization": "k\\n"})', C, "strip it"),
        ('rm(profile="NV-Llama2-70B-RLHF-Chat")', C, "has no attribute set to score"),
        ('arun(arm().score_prompts("abc"))', C, "for one prompt pass [prompt]"),
        ('arun(arm().score(conv("hi", SUR)))', P_, "lone surrogate"),
    ]
    return [Case("reward model", code, error, says) for code, error, says in rows]


def _annotate() -> list[Case]:
    rows = [
        ('cli("annotate", "/no/such/in.jsonl", "out.jsonl")', "No such file"),
        ('cli("annotate", "in.jsonl", "out.jsonl", "--concurrency", "0")', "--concurrency must be at least 1"),
        ('cli("annotate", "in.jsonl", "out.jsonl", "--concurrency", "x")', "invalid int value"),
        ('cli("annotate", "in.jsonl", "out.jsonl", "--timeout", "0")', "timeout must be a positive"),
        ('cli("annotate", "in.jsonl", "out.jsonl", "--url", "ftp://h:1")', "Accepted forms"),
        ('cli("annotate", "in.jsonl", "out.jsonl", "--max-retries", "-1")', "max_retries must be an integer"),
        ('cli("annotate", "in.jsonl", "out.jsonl", "--ready-timeout", "-1")', "ready_timeout must be"),
        ('cli("annotate", "bad.jsonl", "out.jsonl")', "malformed"),
        ('cli("annotate", "in.jsonl", "foreign.jsonl")', "use a new OUT file"),
        ('cli("annotate", "in.jsonl", "in.jsonl")', "IN and OUT are the same file"),
        ('cli("annotate", "in.jsonl", "copy.jsonl")', "assistant turns without labels"),
        ('cli("annotate", "latin1.jsonl", "out.jsonl")', "not valid UTF-8"),
        ('cli("annotate", "deep.jsonl", "out.jsonl")', "JSON nested too deeply"),
        ('cli("annotate", "surrogate.jsonl", "out.jsonl")', "lone surrogate"),
        ('cli("annotate")', "the following arguments are required"),
        ('cli("annotate", "noconv.jsonl", "out.jsonl")', "'conversations' must be a non-empty list"),
        ('cli("annotate", "array.jsonl", "out.jsonl")', "not a JSON object"),
        ('cli("annotate", "robot.jsonl", "out.jsonl")', "fix them or pass --skip-malformed"),
    ]
    return [Case("annotate", code, A, says) for code, says in rows]


CASES: list[Case] = [*_core(), *_client(), *_langchain(), *_llamaindex(), *_reward(), *_annotate()]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def render_table() -> str:
    """The Markdown table of `CASES` (what docs/bad-input.md holds between its markers)."""
    lines = [f"{len(CASES)} cases.", "", "| # | Area | Input | Raises | The message says |", "|---|---|---|---|---|"]
    for number, case in enumerate(CASES, 1):
        error = case.error if case.error.startswith("exit") else f"`{case.error}`"
        lines.append(f"| {number} | {case.area} | `{_cell(case.code)}` | {error} | {_cell(case.says)} |")
    return "\n".join(lines)


def write_doc() -> None:
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{render_table()}\n{END}{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_doc()
    else:
        print(render_table())
