"""``python -m steerlm_demo``: the whole stack on one machine, in one command (``bash scripts/demo.sh``).

1. starts the local Triton server (PyTriton, loopback only) serving a real Hugging Face model with the
   NeMo-deploy signature: the embedded tiny Llama (built once into ``~/.cache/steerlm``, nothing is
   downloaded), or ``--checkpoint DIR``;
2. runs a LangChain RAG chain — a keyword retriever, then ``ChatSteerLM(verbosity=1)`` answering with
   the closed-QA template — and streams the answer token by token over gRPC;
3. runs a LlamaIndex query engine with ``llamaindex_steerlm.SteerLM`` and streams its answer;
4. after each, prints the exact prompt that went on the wire (from the server's request log) and
   checks it against ``steerlm.format_prompt``; then stops the server.

The tiny model is an untrained stand-in: its words are nonsense. The server, the signature, the
prompts, generation, streaming and stop handling are all real.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steerlm.prompts import format_prompt
from steerlm_testing import LocalServer

__all__ = ["DOCUMENTS", "QUESTION", "main", "run"]

MODEL = "Llama2-70B-SteerLM-Chat"
STREAMING_MODEL = f"{MODEL}-streaming"  # the decoupled twin: answers stream token by token
QUESTION = "What does Triton's dynamic batcher do?"
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


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) > 3}


def retrieve(question: str, k: int = 2) -> list[str]:
    """The `k` documents sharing the most words with `question` (an offline stand-in for embeddings)."""
    asked = _words(question)
    return sorted(DOCUMENTS, key=lambda d: -len(asked & _words(d)))[:k]


def expected_prompt() -> str:
    """What both frameworks should send: the closed-QA SteerLM prompt of `QUESTION` over the retrieved
    documents (joined by a blank line, as both frameworks join them)."""
    return format_prompt([{"role": "user", "content": QUESTION}], profile=MODEL, attributes={"verbosity": 1},
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


def _streamed(chunks: Any) -> None:
    start = time.perf_counter()
    first: float | None = None
    count = 0
    for text in chunks:
        if text:
            first = first if first is not None else time.perf_counter() - start
            count += 1
            print(text, end="", flush=True)
    elapsed = time.perf_counter() - start
    ttft = f"{first * 1000:.0f} ms" if first is not None else "n/a"
    print(f"\n[{count} streamed chunks in {elapsed:.2f} s; first after {ttft}]")


def langchain_rag(server: LocalServer, tokenizer: Path | None, max_tokens: int) -> None:
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    from langchain_steerlm import ChatSteerLM, closed_qa_chain

    print(f"\n== LangChain: closed_qa_chain(retriever, ChatSteerLM(verbosity=1)) ==\nQuestion: {QUESTION}\n")
    options: dict[str, Any] = {"profile": MODEL}  # the prompt template (the Triton name is not a profile)
    llm = ChatSteerLM(model=STREAMING_MODEL, url=server.grpc_url, verbosity=1, max_tokens=max_tokens,
                      tokenizer=str(tokenizer) if tokenizer else None, **options)
    retriever: RunnableLambda[str, list[Document]] = RunnableLambda(
        lambda q: [Document(page_content=d) for d in retrieve(q)], name="retriever")
    chain = closed_qa_chain(retriever, llm)
    _streamed(chunk.text for chunk in chain.stream(QUESTION))
    show_wire_prompt(server, STREAMING_MODEL, expected_prompt())


def llamaindex_query(server: LocalServer, max_tokens: int, expected: str) -> None:
    from llama_index.core import SummaryIndex
    from llama_index.core.schema import TextNode

    from llamaindex_steerlm import SteerLM

    print(f"\n== LlamaIndex: SummaryIndex(...).as_query_engine(llm=SteerLM(verbosity=1), streaming=True) ==\n"
          f"Question: {QUESTION}\n")
    llm = SteerLM(model=STREAMING_MODEL, profile=MODEL, url=server.grpc_url, verbosity=1, max_tokens=max_tokens)
    index = SummaryIndex([TextNode(text=d) for d in retrieve(QUESTION)])
    engine = index.as_query_engine(llm=llm, streaming=True)
    response: Any = engine.query(QUESTION)
    _streamed(response.response_gen)
    show_wire_prompt(server, STREAMING_MODEL, expected)
    llm.close()


def run(server: LocalServer, checkpoint: Path, max_tokens: int) -> None:
    """Both framework demos against a running `server` that serves `MODEL` and `STREAMING_MODEL`."""
    tokenizer = checkpoint if (checkpoint / "tokenizer.json").is_file() else None  # for usage counts
    langchain_rag(server, tokenizer, max_tokens)
    llamaindex_query(server, max_tokens, expected_prompt())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steerlm_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="serve this local Hugging Face checkpoint instead of the tiny model")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens per answer (default: 48)")
    args = parser.parse_args(argv)

    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
        print(f"Serving {checkpoint} as {MODEL} (unary) and {STREAMING_MODEL} (streaming).")
    else:
        from steerlm.serve.tiny_model import ensure_tiny_model

        checkpoint = ensure_tiny_model()
        print(f"Serving the embedded tiny Llama ({checkpoint}) as {MODEL} and {STREAMING_MODEL}.\n"
              "It is an untrained stand-in, so its words are nonsense; the server, the NeMo-deploy "
              "signature,\nthe SteerLM prompts, generation, streaming and stop handling are all real.")
    extra = ["--checkpoint", str(checkpoint), *(["--device", args.device] if args.device else [])]
    print("Starting the local Triton server ...", flush=True)
    started = time.perf_counter()
    with LocalServer(preset="hf", extra_args=extra, startup_timeout=600.0) as server:
        print(f"Ready in {time.perf_counter() - started:.1f} s: {server.grpc_url} (gRPC), {server.http_url} (HTTP)")
        run(server, checkpoint, args.max_tokens)
        print("\nStopping the server ...", flush=True)
    print("Done.")
    return 0

