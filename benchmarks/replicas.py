"""Replica load balancing: asyncio throughput at 64 concurrent with 1, 2 and 4 replicas, in one run.

    .venv/bin/python benchmarks/replicas.py [--requests 192] [--rounds 3] [--concurrency 64]

Starts 4 local servers, each serving one scripted model (``replica``, the ``current`` NeMo signature)
with ``--max-batch-size 1`` and one model instance: a replica answers one request at a time, and every
answer takes a fixed 50 ms (the prompt carries ``[[sleep=0.05]]``). So each replica is latency-bound —
at most 20 requests/s, like a GPU server seen from the client — and only spreading requests over
replicas raises throughput.

One `AsyncSteerLMClient` per replica count (gRPC, ``url=[first k servers]``) sends ``--requests``
requests with ``--concurrency`` in flight (an `asyncio.Semaphore`). The replica counts are measured in
ABBA order per round (1, 2, 4, 4, 2, 1), so drift hits all alike; each count's throughput is the median
of its samples, and ``speedup_4x`` is the median over rounds of (4-replica / 1-replica) within the same
round. Each server's request log gives how many requests each replica served. Writes
``benchmarks/results/replicas.json`` and prints it. Target (issue 12): ``speedup_4x`` ≥ 3.5.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from steerlm.client import AsyncSteerLMClient
from steerlm.params import GenerationParams
from steerlm_testing import LocalServer

MODEL = "replica"
LATENCY_S = 0.05
PROMPT = f"[[sleep={LATENCY_S}]] [[say=ok]]"
PARAMS = GenerationParams(max_tokens=4)
COUNTS = (1, 2, 4)
RESULTS = Path(__file__).parent / "results" / "replicas.json"


async def measure(client: AsyncSteerLMClient, requests: int, concurrency: int) -> float:
    """Requests per second for `requests` generations with `concurrency` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            done = await client.generate(PROMPT, PARAMS)
            assert done.text == "ok", done.text

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.perf_counter() - start)


def served(servers: list[LocalServer]) -> list[int]:
    counts = [len(server.requests(MODEL)) for server in servers]
    for server in servers:
        server.clear_log()
    return counts


async def run(servers: list[LocalServer], args: argparse.Namespace) -> dict[str, Any]:
    clients = {k: AsyncSteerLMClient(MODEL, [s.grpc_url for s in servers[:k]], profile=None, timeout=60.0)
               for k in COUNTS}
    samples: dict[int, list[float]] = {k: [] for k in COUNTS}
    spread: dict[int, Counter[int]] = {k: Counter() for k in COUNTS}
    try:
        for k, client in clients.items():  # warm-up: readiness, channels, one request per replica
            await measure(client, 4 * k, 4 * k)
        served(servers)
        for _ in range(args.rounds):
            for k in (*COUNTS, *reversed(COUNTS)):
                samples[k].append(await measure(clients[k], args.requests, args.concurrency))
                spread[k].update(dict(enumerate(served(servers))))
    finally:
        for client in clients.values():
            await client.close()
    per_round = [samples[4][i] / samples[1][i] for i in range(len(samples[1]))]
    throughput = {str(k): round(statistics.median(v), 1) for k, v in samples.items()}
    return {
        "setup": {
            "replicas": len(servers), "model": f"scripted, {LATENCY_S * 1000:.0f} ms per request, "
            "max_batch_size 1, one instance (one request at a time per replica)",
            "client": "AsyncSteerLMClient, gRPC", "concurrency": args.concurrency,
            "requests_per_sample": args.requests, "rounds": args.rounds, "order": "1,2,4,4,2,1 per round",
            "ideal_rps_per_replica": round(1 / LATENCY_S, 1),
        },
        "throughput_rps": throughput,
        "samples_rps": {str(k): [round(x, 1) for x in v] for k, v in samples.items()},
        "served_per_replica": {str(k): [spread[k][i] for i in range(len(servers))] for k in COUNTS},
        "speedup_2x": round(statistics.median(samples[2][i] / samples[1][i] for i in range(len(per_round))), 2),
        "speedup_4x": round(statistics.median(per_round), 2),
        "target_speedup_4x": 3.5,
        "met": statistics.median(per_round) >= 3.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=192, help="requests per sample (default: 192)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 1,2,4,4,2,1 (default: 3)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default: 64)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"result file (default: {RESULTS})")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LocalServer(preset="none", models=[f"{MODEL}=current"],
                                                   extra_args=["--max-batch-size", "1"]))
                   for _ in range(max(COUNTS))]
        load_before = os.getloadavg()
        result = asyncio.run(run(servers, args))
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                         "load_average_before": [round(x, 2) for x in load_before],
                         "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
