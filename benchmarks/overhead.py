"""Client overhead: steerlm's client vs raw tritonclient against the same local server, in one run.

    .venv/bin/python benchmarks/overhead.py [--requests 600] [--concurrent-requests 3000]

Measures (interleaved rounds, so drift hits both sides alike):

* sequential latency, median, over gRPC and HTTP: `SteerLMClient.generate` vs a raw
  `tritonclient` `infer` that sends the same five tensors and decodes the output;
* asyncio throughput with 64 concurrent workers over gRPC: `AsyncSteerLMClient.generate` vs
  `tritonclient.grpc.aio`.

Writes `benchmarks/results/overhead.json` (ratios ours/raw: `latency_ratio_grpc`,
`latency_ratio_http` — lower is better — and `throughput_ratio_aio` — higher is better — plus the raw
numbers) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpc
import tritonclient.http as httpclient

from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.params import GenerationParams
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"
PROMPT = "[[say=ok]]"
PARAMS = GenerationParams(max_tokens=4)
RESULTS = Path(__file__).parent / "results" / "overhead.json"


def raw_inputs(module: Any) -> list[Any]:
    """What a careful raw tritonclient user sends: the same tensors as steerlm, built per call."""
    arrays = {
        "prompts": np.array([[PROMPT.encode()]], dtype=np.object_),
        "max_output_len": np.array([[PARAMS.max_tokens]], dtype=np.int64),
        "stop_words_list": np.array([[b"<extra_id_1>"]], dtype=np.object_),
        "output_generation_logits": np.array([[False]]),
        "output_context_logits": np.array([[False]]),
    }
    out = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, [1, 1], {"O": "BYTES", "i": "INT64", "b": "BOOL"}[array.dtype.kind])
        tensor.set_data_from_numpy(array)
        out.append(tensor)
    return out


def raw_text(result: Any) -> str:
    return str(result.as_numpy("outputs")[0, 0].decode("utf-8"))


def timed(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def sequential(server: LocalServer, protocol: str, n: int, rounds: int) -> dict[str, float]:
    if protocol == "grpc":
        raw = grpcclient.InferenceServerClient(server.grpc_address)
        outputs = [grpcclient.InferRequestedOutput("outputs")]
        url = server.grpc_url
    else:
        raw = httpclient.InferenceServerClient(server.http_address)
        outputs = [httpclient.InferRequestedOutput("outputs")]
        url = server.http_url
    module = grpcclient if protocol == "grpc" else httpclient
    ours = SteerLMClient(MODEL, url)

    def raw_call() -> str:
        return raw_text(raw.infer(MODEL, raw_inputs(module), outputs=outputs))

    def our_call() -> str:
        return ours.generate(PROMPT, PARAMS).text

    assert raw_call() == "ok" and our_call() == "ok"
    timed(raw_call, 50)
    timed(our_call, 50)
    raw_samples: list[float] = []
    our_samples: list[float] = []
    for _ in range(rounds):
        raw_samples += timed(raw_call, n // rounds)
        our_samples += timed(our_call, n // rounds)
    ours.close()
    raw.close()
    raw_ms, our_ms = statistics.median(raw_samples) * 1e3, statistics.median(our_samples) * 1e3
    return {"raw_median_ms": round(raw_ms, 4), "ours_median_ms": round(our_ms, 4),
            "ratio": round(our_ms / raw_ms, 4)}


async def throughput(call: Callable[[], Awaitable[str]], total: int, workers: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            assert await call() == "ok"

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return total / (time.perf_counter() - start)


async def concurrent_aio(server: LocalServer, total: int, workers: int, rounds: int) -> dict[str, float]:
    raw = aiogrpc.InferenceServerClient(server.grpc_address)
    outputs = [grpcclient.InferRequestedOutput("outputs")]
    ours = AsyncSteerLMClient(MODEL, server.grpc_url)

    async def raw_call() -> str:
        return raw_text(await raw.infer(MODEL, raw_inputs(grpcclient), outputs=outputs))

    async def our_call() -> str:
        return (await ours.generate(PROMPT, PARAMS)).text

    await throughput(raw_call, 300, workers)
    await throughput(our_call, 300, workers)
    raw_rates, our_rates = [], []
    for _ in range(rounds):
        raw_rates.append(await throughput(raw_call, total // rounds, workers))
        our_rates.append(await throughput(our_call, total // rounds, workers))
    await ours.close()
    await raw.close()
    raw_rate, our_rate = statistics.median(raw_rates), statistics.median(our_rates)
    return {"raw_req_per_s": round(raw_rate, 1), "ours_req_per_s": round(our_rate, 1),
            "ratio": round(our_rate / raw_rate, 4), "workers": workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1200, help="sequential requests per side and protocol")
    parser.add_argument("--concurrent-requests", type=int, default=3000, help="aio requests per side")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=12, help="interleaved ours/raw rounds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with LocalServer(preset="minimal", request_log=False) as server:
        grpc_stats = sequential(server, "grpc", args.requests, args.rounds)
        http_stats = sequential(server, "http", args.requests, args.rounds)
        aio_stats = asyncio.run(concurrent_aio(server, args.concurrent_requests, args.workers, args.rounds))
    result = {
        "latency_ratio_grpc": grpc_stats["ratio"],
        "latency_ratio_http": http_stats["ratio"],
        "throughput_ratio_aio": aio_stats["ratio"],
        "sequential_grpc": grpc_stats,
        "sequential_http": http_stats,
        "concurrent_grpc_aio": aio_stats,
        "setup": {"model": MODEL, "prompt": PROMPT, "max_tokens": PARAMS.max_tokens,
                  "requests": args.requests, "concurrent_requests": args.concurrent_requests,
                  "rounds": args.rounds, "python": platform.python_version(), "machine": platform.machine(),
                  "server": "steerlm LocalServer preset 'minimal' (PyTriton 0.7 / Triton 2.51) on loopback"},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
