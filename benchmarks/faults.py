"""Fault figures with DEFAULT client settings, against the real local server (kill -9 and restart).

    .venv/bin/python benchmarks/faults.py [--concurrency 64] [--rounds 1]

Measures, for gRPC and HTTP:

* **restart under load**: `concurrency` concurrent calls — LangChain ``ChatSteerLM.ainvoke`` and the
  core ``AsyncSteerLMClient.generate`` — then the server is killed (SIGKILL of its process group) and
  started again on the same ports. Counts calls lost (raised), hung (not done 120 s after the restart)
  and answered, and the outage (kill → server ready again);
* **unreachable server**: a first call to a URL where nothing listens: the typed error, whether it names
  the URL, and how long it took (blocking and asyncio);
* **six concurrent first calls** to that URL: when each failed (they should fail together, once).

Writes `benchmarks/results/faults.json` and prints it. Nothing here is asserted: the regression tests
with the same scenarios are tests/integration/test_faults.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import socket
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from langchain_steerlm import ChatSteerLM, aclose_clients
from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.errors import SteerLMError
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"
RESULTS = Path(__file__).parent / "results" / "faults.json"
HANG_LIMIT_S = 120.0


def closed_url(protocol: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"{protocol}://127.0.0.1:{port}"


async def restart_under_load(server: LocalServer, url: str, api: str, concurrency: int) -> dict[str, Any]:
    """`concurrency` calls in flight, then kill -9 + restart; what became of each call."""
    if api == "ChatSteerLM.ainvoke":
        chat = ChatSteerLM(model=MODEL, url=url, max_tokens=4)  # default timeout / retries / ready_timeout

        def call(i: int) -> Awaitable[Any]:
            return chat.ainvoke(f"[[say=reply {i}]] [[delay=0.2]]")
    else:
        client = AsyncSteerLMClient(MODEL, url)  # default settings

        def call(i: int) -> Awaitable[Any]:
            return client.generate(f"[[say=reply {i}]] [[delay=0.2]]")

    await call(-1)  # connected and ready before the fault, like a client in service
    outage: dict[str, float] = {}

    def kill_and_restart() -> None:
        time.sleep(0.3)
        outage["killed"] = time.monotonic()
        server.kill()
        server.start()
        outage["ready"] = time.monotonic()

    killer = threading.Thread(target=kill_and_restart)
    started = time.monotonic()
    tasks = [asyncio.ensure_future(call(i)) for i in range(concurrency)]
    killer.start()
    await asyncio.to_thread(killer.join)
    done, pending = await asyncio.wait(tasks, timeout=HANG_LIMIT_S)
    for task in pending:
        task.cancel()
    errors = [t.exception() for t in done if t.exception() is not None]
    answers = [t.result() for t in done if t.exception() is None]
    texts = [getattr(a, "content", getattr(a, "text", "")) for a in answers]
    if api == "ChatSteerLM.ainvoke":
        await aclose_clients()
    else:
        await client.close()
    return {
        "api": api, "concurrency": concurrency, "answered": len(answers), "lost": len(errors),
        "hung": len(pending), "answers_correct": sorted(texts) == sorted(f"reply {i}" for i in range(concurrency)),
        "outage_s": round(outage["ready"] - outage["killed"], 2),
        "all_done_after_s": round(time.monotonic() - started, 2),
        "errors": sorted({f"{type(e).__name__}: {e}"[:200] for e in errors})[:3],
    }


def unreachable(protocol: str) -> dict[str, Any]:
    url = closed_url(protocol)
    out: dict[str, Any] = {"url": url}
    for mode in ("sync", "async"):
        started = time.monotonic()
        try:
            if mode == "sync":
                with SteerLMClient(MODEL, url) as client:
                    client.generate("hi")
            else:
                async def main() -> None:
                    async with AsyncSteerLMClient(MODEL, url) as aclient:
                        await aclient.generate("hi")
                asyncio.run(main())
            error: BaseException | None = None
        except SteerLMError as exc:
            error = exc
        out[mode] = {"seconds": round(time.monotonic() - started, 2), "error": type(error).__name__,
                     "names_url": error is not None and url in str(error), "message": str(error)[:240]}
    return out


def six_first_calls(protocol: str) -> dict[str, Any]:
    url = closed_url(protocol)

    async def main() -> list[float]:
        async with AsyncSteerLMClient(MODEL, url) as client:
            started = time.monotonic()

            async def one() -> float:
                with contextlib.suppress(SteerLMError):
                    await client.generate("hi")
                return time.monotonic() - started

            return list(await asyncio.gather(*(one() for _ in range(6))))

    ends = sorted(asyncio.run(main()))
    client = SteerLMClient(MODEL, url)
    thread_ends: list[float] = []
    started = time.monotonic()

    def call() -> None:
        try:
            client.generate("hi")
        except SteerLMError:
            thread_ends.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    client.close()
    return {"async_fail_times_s": [round(t, 2) for t in ends],
            "threads_fail_times_s": [round(t, 2) for t in sorted(thread_ends)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="restarts per protocol and API")
    args = parser.parse_args()
    results: dict[str, Any] = {"python": platform.python_version(), "settings": "client defaults",
                               "restart_under_load": [], "unreachable": {}, "six_first_calls": {}}
    with LocalServer(preset="minimal", startup_timeout=180.0, stop_timeout=20.0) as server:
        for protocol in ("grpc", "http"):
            url = server.grpc_url if protocol == "grpc" else server.http_url
            for api in ("ChatSteerLM.ainvoke", "AsyncSteerLMClient.generate"):
                for _ in range(args.rounds):
                    outcome = asyncio.run(restart_under_load(server, url, api, args.concurrency))
                    results["restart_under_load"].append({"protocol": protocol, **outcome})
                    print(json.dumps(results["restart_under_load"][-1]), flush=True)
    for protocol in ("grpc", "http"):
        results["unreachable"][protocol] = unreachable(protocol)
        results["six_first_calls"][protocol] = six_first_calls(protocol)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
