"""Adapter cost: ChatSteerLM and LlamaIndex SteerLM against hand-written floors over raw tritonclient.

    .venv/bin/python benchmarks/adapters.py [--rounds 5] [--scale 1.0] [--output PATH]

One run, one local server (scripted model, gRPC), ABAB rounds: each round runs the floor and ours
back to back (the order alternates), and every figure is the median over rounds of the per-round
ratio ours/floor, so load from other processes on the machine hits both sides alike. Measures:

* per call (sequential, `[[say=ok]]`, 4 tokens): wall median and client CPU (`time.process_time`
  of this process, all its threads) of `ChatSteerLM.invoke`, LlamaIndex `chat` and `complete`;
* a 16 k-character prompt and a 200-message conversation through `ChatSteerLM.invoke` (CPU);
* `ChatSteerLM.ainvoke` throughput with 1, 64 and 256 concurrent callers vs `tritonclient.grpc.aio`;
* `ChatSteerLM.stream` time to first token on the decoupled model vs a raw gRPC stream;
* `ChatSteerLM.batch` of 32 inputs vs ONE raw `[32,1]` request carrying the same prompts;
* a 10 k-chunk stream through the client's stream path in process (CPU; the server's scripted model
  caps answers at 4096 tokens): delta responses -> stop matching -> LangChain chunks, vs a
  hand-written loop that makes the same chunks;
* `import langchain_steerlm` vs the imports a hand-written model needs (fresh interpreters).

The floors are in `adapter_floors.py`. Writes `benchmarks/results/adapters.json` and prints a
Markdown table (the one in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from adapter_floors import MODEL, STREAM_MODEL, FloorChat, FloorLLM, Raw, Turn, render, stream_chunks
from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from overhead import throughput as requests_per_second
from steerlm import format_prompt
from steerlm_testing import LocalServer

RESULTS = Path(__file__).parent / "results" / "adapters.json"
SAY = "[[say=ok]]"
TARGETS = {  # measure -> (key, comparison, bound)
    "chat_invoke": [("wall_ratio", "<=", 1.03), ("cpu_ratio", "<=", 1.10)],
    "llamaindex_chat": [("wall_ratio", "<=", 1.03), ("cpu_ratio", "<=", 1.10)],
    "llamaindex_complete": [("wall_ratio", "<=", 1.03), ("cpu_ratio", "<=", 1.10)],
    "ainvoke_256": [("throughput_ratio", ">=", 0.95)],
    "batch_32": [("wall_ratio", "<=", 1.5)],
    "prompt_16k": [("cpu_ratio", "<=", 1.2)],
    "messages_200": [("cpu_ratio", "<=", 1.2)],
    "stream_10k_chunks": [("cpu_ratio", "<=", 1.2)],
    "import": [("wall_ratio", "<=", 1.1)],
}


def _lc(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    return [("human" if role == "user" else "ai", text) for role, text in turns]


def _long_text(size: int) -> str:
    # Hyphenated words: 16 k characters in about 2,600 words, inside the scripted model's 4,096-word window.
    line = "The quick-brown fox jumps-over the lazy-dog; if a < b then b > a. "
    return (SAY + " " + line * (size // len(line) + 1))[:size]


def _per_call(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(median wall seconds per call, CPU seconds per call) over `n` calls."""
    walls = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (time.process_time() - cpu) / n


def _abab(rounds: int, floor: Callable[[], dict[str, float]], ours: Callable[[], dict[str, float]]) -> dict[str, Any]:
    """Run both sides `rounds` times (alternating which goes first); medians and per-round ratio medians."""
    samples: dict[str, list[dict[str, float]]] = {"floor": [], "ours": []}
    for index in range(rounds):
        order = [("floor", floor), ("ours", ours)]
        for side, fn in order if index % 2 == 0 else reversed(order):
            samples[side].append(fn())
    out: dict[str, Any] = {}
    for key in samples["floor"][0]:
        f = [s[key] for s in samples["floor"]]
        o = [s[key] for s in samples["ours"]]
        ratios = [b / a for a, b in zip(f, o, strict=True)]
        name = key.removesuffix("_s").removesuffix("_per_s")
        out[f"floor_{key}"] = statistics.median(f)
        out[f"ours_{key}"] = statistics.median(o)
        out[f"{name}_ratio"] = round(statistics.median(ratios), 4)
        out[f"{name}_ratio_spread"] = [round(min(ratios), 4), round(max(ratios), 4)]
    return out


def per_call(rounds: int, n: int, floor: Callable[[], object], ours: Callable[[], object]) -> dict[str, Any]:
    def side(fn: Callable[[], object]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            wall, cpu = _per_call(fn, n)
            return {"wall_s": wall, "cpu_s": cpu}
        return run

    for _ in range(max(3, n // 10)):
        floor()
        ours()
    return {**_abab(rounds, side(floor), side(ours)), "calls_per_round": n}


async def throughput(rounds: int, levels: Sequence[tuple[int, int]], raw: Raw, floor: FloorChat,
                     chat: ChatSteerLM) -> dict[str, dict[str, Any]]:
    """`ainvoke_<workers>` for each (workers, requests per round) level, all on one event loop."""
    messages = _lc([("user", SAY)])

    async def ours_call() -> str:
        return str((await chat.ainvoke(messages)).content)

    async def floor_call() -> str:
        return str((await floor.ainvoke(messages)).content)

    async def measure(workers: int, total: int) -> dict[str, Any]:
        await requests_per_second(floor_call, min(total, 200), workers)
        await requests_per_second(ours_call, min(total, 200), workers)
        samples: dict[str, list[float]] = {"floor": [], "ours": []}
        for index in range(rounds):
            sides = [("floor", floor_call), ("ours", ours_call)]
            for side, fn in sides if index % 2 == 0 else reversed(sides):
                samples[side].append(await requests_per_second(fn, total, workers))
        ratios = [o / f for f, o in zip(samples["floor"], samples["ours"], strict=True)]
        return {"floor_req_per_s": statistics.median(samples["floor"]),
                "ours_req_per_s": statistics.median(samples["ours"]),
                "throughput_ratio": round(statistics.median(ratios), 4),
                "throughput_ratio_spread": [round(min(ratios), 4), round(max(ratios), 4)],
                "workers": workers, "requests_per_round": total}

    out = {f"ainvoke_{workers}": await measure(workers, total) for workers, total in levels}
    await raw.close_aio()
    return out


def stream_ttft(rounds: int, n: int, floor: FloorChat, address: str) -> dict[str, Any]:
    chat = ChatSteerLM(model=STREAM_MODEL, profile=MODEL, url=f"grpc://{address}", max_tokens=4)
    messages = _lc([("user", "[[say=one two three four]]")])

    def first(pieces: Any) -> float:
        start = time.perf_counter()
        ttft = None
        for piece in pieces:
            if ttft is None and piece.content:
                ttft = time.perf_counter() - start
        assert ttft is not None
        return ttft

    def side(make: Callable[[], Any]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            return {"ttft_s": statistics.median(first(make()) for _ in range(n))}
        return run

    assert "".join(str(c.content) for c in floor.stream(messages)) == "".join(
        str(c.content) for c in chat.stream(messages))
    for _ in range(5):
        first(floor.stream(messages))
        first(chat.stream(messages))
    return {**_abab(rounds, side(lambda: floor.stream(messages)), side(lambda: chat.stream(messages))),
            "streams_per_round": n}


def stream_10k(rounds: int, chunks: int) -> dict[str, Any]:
    """The client's stream path in process: delta responses -> StopMatcher -> LangChain chunks."""
    from langchain_steerlm._convert import StreamState
    from steerlm.transport.assembly import StreamAssembler
    from steerlm.transport.base import StreamEvent, spec_from_config
    from steerlm.transport.signatures import make_codec

    config = {"name": "ensemble", "max_batch_size": 8, "model_transaction_policy": {"decoupled": True},
              "input": [{"name": "text_input", "data_type": "TYPE_STRING", "dims": [1]},
                        {"name": "max_tokens", "data_type": "TYPE_INT32", "dims": [1]}],
              "output": [{"name": "text_output", "data_type": "TYPE_STRING", "dims": [1]}]}
    codec = make_codec(spec_from_config(config, "ensemble"))
    words = ["alpha ", "bravo ", "charlie ", "delta\n", "echo, ", "fox-trot "]
    events = [StreamEvent({"text_output": np.array([[words[i % 6].encode()]], dtype=np.object_)}, False)
              for i in range(chunks)]
    events.append(StreamEvent({}, True))
    chat = ChatSteerLM(model=MODEL, url="grpc://127.0.0.1:1")
    prepared = chat._prepare([HumanMessage(SAY)], None, {})

    def ours() -> int:
        assembler, state, count = StreamAssembler(codec, ("<extra_id_1>",)), StreamState(prepared), 0
        for event in events:
            for piece in assembler.feed(event):
                count += state.feed(piece) is not None
        return count

    def floor() -> int:
        return sum(1 for _ in stream_chunks(iter(events)))

    def side(fn: Callable[[], int]) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            cpu = time.process_time()
            fn()
            return {"cpu_s": time.process_time() - cpu}
        return run

    assert abs(ours() - floor()) <= 2  # the last chunk (metadata) and a held-back newline
    return {**_abab(rounds, side(floor), side(ours)), "chunks": chunks}


def _import_time(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout)


def compile_package_bytecode() -> None:
    """Write the steerlm packages' bytecode (`__pycache__`), as ``pip install`` does for the floor's packages.

    Without it an editable install under ``PYTHONDONTWRITEBYTECODE=1`` (set on the development machines)
    compiles every module from source in each fresh interpreter: 110 ms of the 170 ms measured once, none of
    which an installed package pays."""
    import compileall

    import langchain_steerlm
    import llamaindex_steerlm
    import steerlm

    for package in (steerlm, langchain_steerlm, llamaindex_steerlm):
        compileall.compile_dir(str(Path(str(package.__file__)).parent), quiet=1)


def import_time(rounds: int, n: int) -> dict[str, Any]:
    compile_package_bytecode()
    floor = ("from langchain_core.language_models import BaseChatModel; "
             "from langchain_core.messages import AIMessage, AIMessageChunk; "
             "from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult; "
             "import numpy, tritonclient.grpc")
    ours = "import langchain_steerlm"

    def side(statement: str) -> Callable[[], dict[str, float]]:
        return lambda: {"wall_s": statistics.median(_import_time(statement) for _ in range(n))}

    return {**_abab(rounds, side(floor), side(ours)), "floor_statement": floor, "interpreters_per_round": n}


def _verdicts(measures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, checks in TARGETS.items():
        for key, op, bound in checks if name in measures else ():
            value = measures[name][key]
            out[f"{name}.{key}"] = {"value": value, "target": f"{op} {bound}",
                                    "met": value <= bound if op == "<=" else value >= bound}
    return out


def markdown(measures: dict[str, dict[str, Any]], verdicts: dict[str, dict[str, Any]]) -> str:
    rows = ["| measure | floor | ours | ratio (spread) | target | met |", "|---|---|---|---|---|---|"]
    units = {"wall_s": (1e3, "ms"), "cpu_s": (1e6, "µs"), "ttft_s": (1e3, "ms"), "req_per_s": (1, "req/s")}
    for name, values in measures.items():
        for key in [k.removeprefix("floor_") for k in values if k.startswith("floor_") and k != "floor_statement"]:
            scale, unit = units[key]
            ratio_key = f"{key.removesuffix('_s').removesuffix('_per_s')}_ratio"
            if key == "req_per_s":
                ratio_key = "throughput_ratio"
            verdict = verdicts.get(f"{name}.{ratio_key}")
            spread = values.get(f"{ratio_key}_spread", ["", ""])
            rows.append(f"| {name} {key.removesuffix('_s')} | {values[f'floor_{key}'] * scale:.1f} {unit} | "
                        f"{values[f'ours_{key}'] * scale:.1f} {unit} | **{values[ratio_key]:.3f}** "
                        f"({spread[0]}–{spread[1]}) | {verdict['target'] if verdict else ''} | "
                        f"{('yes' if verdict['met'] else 'NO') if verdict else ''} |")
    return "\n".join(rows)


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A before/after Markdown table of the targeted ratios (median, with the per-round spread)."""
    rows = ["| measure | target | before | after | met |", "|---|---|---|---|---|"]
    for name, verdict in after["targets"].items():
        measure, key = name.split(".")
        old = before["targets"].get(name, {}).get("value")
        spread = after["measures"][measure].get(f"{key}_spread", ["", ""])
        rows.append(f"| {measure} {key.removesuffix('_ratio')} | {verdict['target']} | "
                    f"{'' if old is None else f'{old:.3f}'} | **{verdict['value']:.3f}** "
                    f"({spread[0]}–{spread[1]}) | {'yes' if verdict['met'] else 'no'} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="ABAB rounds (>= 5 for the targets)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every call count (0.2 = smoke run)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--only", default="", help="comma-separated groups: server, stream10k, import")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="print a before/after table of two result files and exit")
    args = parser.parse_args()
    if args.compare:
        print(compare(*(json.loads(p.read_text(encoding="utf-8")) for p in args.compare)))
        return
    only = set(filter(None, args.only.split(","))) or {"server", "stream10k", "import"}
    rounds = args.rounds

    def n(count: int) -> int:
        return max(1, int(count * args.scale))

    measures: dict[str, dict[str, Any]] = {}
    if "server" in only:
        measures.update(server_measures(rounds, n))
    if "stream10k" in only:
        measures["stream_10k_chunks"] = stream_10k(rounds, 10_000)
    if "import" in only:
        measures["import"] = import_time(rounds, max(3, n(7)))
    verdicts = _verdicts(measures)
    result = {"targets": verdicts, "measures": measures,
              "setup": {"rounds": rounds, "scale": args.scale, "python": platform.python_version(),
                        "machine": platform.machine(), "model": MODEL, "max_tokens": 4,
                        "server": "LocalServer preset minimal, --max-batch-size 32, loopback gRPC",
                        "note": "shared 2-core VM: other processes run alongside; ratios are per-round ABAB"}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(measures, verdicts))


def server_measures(rounds: int, n: Callable[[int], int]) -> dict[str, dict[str, Any]]:
    """Everything measured against the local server."""
    measures: dict[str, dict[str, Any]] = {}
    with LocalServer(preset="minimal", request_log=False, extra_args=["--max-batch-size", "32"]) as server:
        address = server.grpc_address
        raw = Raw(address)
        floor, floor_llm = FloorChat(raw=raw), FloorLLM(raw=raw)
        chat = ChatSteerLM(model=MODEL, url=f"grpc://{address}", max_tokens=4)
        llm = SteerLM(model=MODEL, url=f"grpc://{address}", max_tokens=4)
        one = _lc([("user", SAY)])
        long_turns: list[Turn] = [("user", _long_text(16_000))]
        many: list[Turn] = [("assistant" if i % 2 == 0 else "user", f"message {i} about a < b")
                            for i in range(199)] + [("user", SAY)]
        for turns in ([("user", SAY)], long_turns, many):
            prompt = format_prompt([{"role": r, "content": t} for r, t in turns], profile=MODEL)
            assert prompt == render(turns), "the floor must send the same prompt"
        measures["chat_invoke"] = per_call(rounds, n(200), lambda: floor.invoke(one), lambda: chat.invoke(one))
        li_messages = [ChatMessage(role="user", content=SAY)]
        assert floor_llm.chat(li_messages).message.content == llm.chat(li_messages).message.content
        measures["llamaindex_chat"] = per_call(rounds, n(200), lambda: floor_llm.chat(li_messages),
                                               lambda: llm.chat(li_messages))
        measures["llamaindex_complete"] = per_call(rounds, n(200), lambda: floor_llm.complete(SAY),
                                                   lambda: llm.complete(SAY))
        lc_long, lc_many = _lc(long_turns), _lc(many)
        measures["prompt_16k"] = per_call(rounds, n(100), lambda: floor.invoke(lc_long), lambda: chat.invoke(lc_long))
        measures["messages_200"] = per_call(rounds, n(50), lambda: floor.invoke(lc_many), lambda: chat.invoke(lc_many))
        batch = [[("user", f"{SAY} question {i}")] for i in range(32)]
        lc_batch = [_lc(t) for t in batch]
        assert raw.batch(batch) == [str(m.content) for m in chat.batch(lc_batch)]  # type: ignore[arg-type]
        measures["batch_32"] = per_call(rounds, n(20), lambda: raw.batch(batch),
                                        lambda: chat.batch(lc_batch))  # type: ignore[arg-type]
        # Concurrent rounds run thousands of requests: a full garbage collection of this process (over
        # 100 ms with LangChain, LlamaIndex and numpy loaded) comes about once per thousand requests,
        # and a round must hold several for either side, or one landing in a round decides its ratio.
        levels = [(workers, n(total)) for workers, total in ((1, 100), (64, 1920), (256, 3072))]
        measures.update(asyncio.run(throughput(rounds, levels, raw, floor, chat)))
        measures["stream_ttft"] = stream_ttft(rounds, n(40), floor, address)
        raw.close()
    return measures


if __name__ == "__main__":
    main()
