"""Peers vs steerlm on the TensorRT-LLM ``ensemble`` signature, against one local server, in one run.

    .venv/bin/python benchmarks/peers.py [--calls 20] [--timeout 10]

Starts `LocalServer(preset="ensemble")` (plus a UINT32 twin that ends its streams with PyTriton's empty
final response) and, per model variant and client, runs a worker SUBPROCESS
(each call bounded by ``--timeout``; a call that does not return is recorded as a hang, a raised error
as a failure — results, not crashes):

* peers: llama-index ``NvidiaTriton`` (llama-index-llms-nvidia-triton, in .venv) and
  langchain-nvidia-trt ``TritonTensorRTLLM`` (in ``.venv-peers``: it pins protobuf<4 and needs
  langchain-core<0.2 — create it with ``python3.11 -m venv .venv-peers && .venv-peers/bin/pip install
  langchain-nvidia-trt==0.0.1rc0 "langchain-core<0.2"``; skipped with a note when absent);
* ours: ``langchain_steerlm.ChatSteerLM`` and ``llamaindex_steerlm.SteerLM`` (``profile=
  "Llama2-70B-SteerLM-Chat"``, gRPC).

Workloads: ``invoke`` — ``--calls`` sequential calls, 24 tokens, no server delay (client overhead);
``stream`` — 24 tokens at 10 ms per token (time to first chunk, chunks, text). Every client gets the
same question with a ``[[say=...]]`` directive, so the expected text is known; "exact" means the
returned text equals it. Writes ``benchmarks/results/peers.json`` and prints a Markdown table.

Only the standard library is imported at module level: the same file is the worker in both venvs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "peers.json"
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
WORDS = " ".join(f"w{i}" for i in range(24))
QUESTION = f"Name some words. [[say={WORDS}]]"
PACED = f"Name some words slowly. [[delay=0.01]] [[say={WORDS}]]"
MODELS = ("ensemble-streaming", "ensemble-uint32-streaming", "ensemble-streaming-empty-final",
          "ensemble-uint32-streaming-empty-final", "ensemble")
EXTRA_MODELS = ("ensemble-uint32-streaming-empty-final=steerlm.serve.ensemble:bind_uint32_streaming_empty_final",)
CLIENTS = {
    "llama-index NvidiaTriton 0.6.0": "li_peer",
    "langchain-nvidia-trt 0.0.1rc0": "lc_peer",
    "steerlm ChatSteerLM (LangChain)": "lc_ours",
    "steerlm SteerLM (LlamaIndex)": "li_ours",
}
PROFILE = "Llama2-70B-SteerLM-Chat"


# ----------------------------------------------------------------------------------------------- worker
def _make(kind: str, grpc_address: str, model: str) -> tuple[Callable[[str], str], Callable[[str], Iterator[str]]]:
    """(invoke, stream) for one client, built the way its docs show."""
    if kind == "li_peer":
        from llama_index.llms.nvidia_triton import NvidiaTriton

        li = NvidiaTriton(server_url=grpc_address, model_name=model, tokens=64)
        return (lambda q: li.complete(q).text), (lambda q: (c.delta or "" for c in li.stream_complete(q)))
    if kind == "lc_peer":
        from langchain_nvidia_trt import TritonTensorRTLLM

        lc = TritonTensorRTLLM(server_url=grpc_address, model_name=model, tokens=64)
        return (lambda q: str(lc.invoke(q))), (lambda q: (str(c) for c in lc.stream(q)))
    if kind == "lc_ours":
        from langchain_steerlm import ChatSteerLM

        chat = ChatSteerLM(model=model, profile=PROFILE, url=f"grpc://{grpc_address}", max_tokens=64, timeout=10)
        return (lambda q: str(chat.invoke(q).content)), (lambda q: (str(c.content) for c in chat.stream(q)))
    from llamaindex_steerlm import SteerLM

    llm = SteerLM(model=model, profile=PROFILE, url=f"grpc://{grpc_address}", max_tokens=64, timeout=10)
    return (lambda q: llm.complete(q).text), (lambda q: (c.delta or "" for c in llm.stream_complete(q)))


def _bounded(fn: Callable[[], Any], timeout: float) -> tuple[str, Any]:
    """("ok", value) | ("error", message) | ("hang", None): `fn` in a daemon thread, joined with a timeout."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # a peer's failure is a result
            box["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return "hang", None
    return ("error", box["error"]) if "error" in box else ("ok", box["value"])


def _stream_call(stream: Callable[[str], Iterator[str]], question: str) -> dict[str, Any]:
    start = time.perf_counter()
    first, chunks, text = None, 0, ""
    for piece in stream(question):
        if piece and first is None:
            first = time.perf_counter() - start
        chunks += bool(piece)
        text += piece
    return {"ttft": first, "total": time.perf_counter() - start, "chunks": chunks, "text": text}


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"calls": 0, "ok": 0, "errors": 0, "hangs": 0, "error": None}
    status, made = _bounded(lambda: _make(spec["kind"], spec["grpc"], spec["model"]), spec["timeout"])
    if status != "ok":
        out.update(errors=1 if status == "error" else 0, hangs=int(status == "hang"), error=made or "hang")
        return out
    invoke, stream = made
    latencies, ttfts, totals, texts, chunks = [], [], [], [], []
    for index in range(spec["calls"] * 2):
        streaming = index % 2 == 1
        fn = (lambda: _stream_call(stream, PACED)) if streaming else (lambda: invoke(QUESTION))
        started = time.perf_counter()
        status, value = _bounded(fn, spec["timeout"])
        out["calls"] += 1
        if status != "ok":
            out["errors" if status == "error" else "hangs"] += 1
            out["error"] = out["error"] or (value if status == "error" else f"no answer within {spec['timeout']} s")
            if status == "hang":
                break
            continue
        out["ok"] += 1
        if streaming:
            ttfts.append(value["ttft"] or value["total"])
            totals.append(value["total"])
            chunks.append(value["chunks"])
            out["stream_text"] = value["text"]
        else:
            latencies.append(time.perf_counter() - started)
            texts.append(value)
    def ms(values: list[float]) -> float | None:
        return round(statistics.median(values) * 1000, 1) if values else None

    out.update(invoke_median_ms=ms(latencies), stream_ttft_median_ms=ms(ttfts), stream_total_median_ms=ms(totals),
               stream_chunks=round(statistics.median(chunks)) if chunks else None,
               invoke_text=texts[-1] if texts else None)
    out["invoke_exact"] = bool(texts) and all(t == WORDS for t in texts)
    out["stream_exact"] = out.get("stream_text") == WORDS if chunks else False
    return out


# ----------------------------------------------------------------------------------------------- driver
def _run_worker(python: Path, spec: dict[str, Any], budget: float) -> dict[str, Any]:
    try:
        done = subprocess.run([str(python), __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                              timeout=budget, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"calls": 0, "ok": 0, "errors": 0, "hangs": 1, "error": f"worker killed after {budget:.0f} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"calls": 0, "ok": 0, "errors": 1, "hangs": 0, "error": f"worker failed: {tail[:200]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _cell(r: dict[str, Any], key: str) -> str:
    value = r.get(key)
    return "—" if value is None else str(value)


def _outcome(r: dict[str, Any]) -> str:
    if r.get("skipped"):
        return f"skipped: {r['skipped']}"
    if r["ok"] == 0:
        return ("HANG" if r["hangs"] else "FAIL") + f": {r['error']}"
    parts = [f"{r['ok']}/{r['calls']} ok"]
    if r["errors"] or r["hangs"]:
        parts.append(f"{r['errors']} errors, {r['hangs']} hangs ({r['error']})")
    if not r.get("invoke_exact"):
        parts.append(f"invoke text {r.get('invoke_text')!r:.60}")
    if not r.get("stream_exact"):
        parts.append(f"stream text {r.get('stream_text')!r:.60}")
    return "; ".join(parts)


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| model | client | invoke median ms | stream TTFT ms | stream total ms | chunks | outcome |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| `{r['model']}` | {r['client']} | {_cell(r, 'invoke_median_ms')} | "
                    f"{_cell(r, 'stream_ttft_median_ms')} | {_cell(r, 'stream_total_median_ms')} | "
                    f"{_cell(r, 'stream_chunks')} | {_outcome(r)} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="invoke and stream calls per client and model")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a call counts as a hang")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        os._exit(0)  # leave hung peer threads behind

    from steerlm_testing import LocalServer

    results = []
    with LocalServer(preset="ensemble", models=EXTRA_MODELS, request_log=False) as server:
        for model in MODELS:
            for client, kind in CLIENTS.items():
                spec = {"kind": kind, "grpc": server.grpc_address, "model": model, "calls": args.calls,
                        "timeout": args.timeout}
                python = PEER_PYTHON if kind == "lc_peer" else Path(sys.executable)
                row: dict[str, Any] = {"model": model, "client": client, "python": str(python.relative_to(ROOT))
                                       if python.is_relative_to(ROOT) else str(python)}
                if not python.exists():
                    row.update(skipped=f"{python} not found (see the module docstring)", calls=0, ok=0)
                else:
                    row.update(_run_worker(python, spec, budget=args.timeout * (args.calls * 2 + 3)))
                results.append(row)
                print(f"{model:32} {client:34} {_outcome(row)[:90]}", file=sys.stderr, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"command": "python benchmarks/peers.py " + " ".join(sys.argv[1:]), "calls": args.calls,
            "timeout_s": args.timeout, "python": sys.version.split()[0], "cpus": os.cpu_count(),
            "expected_text": WORDS, "date": time.strftime("%Y-%m-%d")}
    RESULTS.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
