"""End-to-end benchmark on a real model: ``ChatSteerLM`` against raw tritonclient, same server, one run.

The local server (``steerlm serve``, PyTriton) serves random weights of the Llama-3-8B shape in bf16
(``--layers`` decoder layers; nothing is downloaded) with ``ignore_eos``, so every answer is exactly
``--max-tokens`` tokens. Then, alternating the two clients after a warm-up:

* **streaming** (gRPC, the decoupled model): time to first token (first non-empty text) and tokens/s
  of one answer, through ``ChatSteerLM.stream`` and through a raw tritonclient gRPC stream;
* **batching** (the unary model): ``ChatSteerLM.batch`` of ``--batch-size`` questions (one Triton
  request) and one raw tritonclient ``infer`` of the same rows.

The raw requests replay, tensor for tensor, what ``ChatSteerLM`` sent (read back from the server's
request log), so both sides ask for exactly the same work and the ratios measure the client stack.
Targets: throughput ≥ 0.98× raw, TTFT within 1 ms of raw.

    python benchmarks/gpu_e2e.py                       # NVIDIA GPU -> benchmarks/results/gpu_e2e.json
    python benchmarks/gpu_e2e.py --layers 8            # a 2 B-parameter slice of the same shape
    python benchmarks/gpu_e2e.py --tiny                # CPU smoke run of the whole path; writes nothing
    python benchmarks/gpu_e2e.py --stub-venv /opt/stub # the server environment has numpy 2 (docs/serving.md)
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient

from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"
STREAMING = f"{MODEL}-streaming"
RESULTS = Path(__file__).parent / "results" / "gpu_e2e.json"
TARGETS = {"throughput_ratio_min": 0.98, "ttft_delta_ms_max": 1.0}
QUESTIONS = [f"Question {i}: how does dynamic batching change the latency of request number {i}?" for i in range(64)]
NUMPY = {"INT64": np.int64, "INT32": np.int32, "FP32": np.float32, "BOOL": np.bool_}
# The server process is started with this launcher instead of ``-m steerlm_testing.serve`` when --stub-venv is given:
# PyTriton's Python-backend stub then runs in that (numpy < 2) environment (REFERENCE §8).
STUB_LAUNCHER = (
    "import os, pathlib, sys\n"
    "import pytriton.server.triton_server as ts\n"
    "ts.get_triton_python_backend_python_env = lambda: pathlib.Path(os.environ['STEERLM_STUB_VENV'])\n"
    "from steerlm_testing.serve import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


class BenchServer(LocalServer):
    """`LocalServer`, optionally started through `STUB_LAUNCHER`."""

    def __init__(self, *, stub_launcher: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stub_launcher = stub_launcher

    def _command(self) -> list[str]:
        command = super()._command()
        return [command[0], "-c", STUB_LAUNCHER, *command[3:]] if self.stub_launcher else command


def replay(entry: dict[str, Any]) -> list[Any]:
    """tritonclient inputs equal to one logged request (datatypes, shapes and values)."""
    inputs = []
    for name, tensor in entry["inputs"].items():
        datatype, shape, data = tensor["datatype"], tensor["shape"], tensor["data"]
        if datatype == "BYTES":
            array = np.array([str(v).encode("utf-8") for v in data], dtype=np.object_).reshape(shape)
        else:
            array = np.array(data, dtype=NUMPY[datatype]).reshape(shape)
        item = grpcclient.InferInput(name, list(array.shape), datatype)
        item.set_data_from_numpy(array)
        inputs.append(item)
    return inputs


def timed_stream(chunks: Callable[[], Any]) -> dict[str, float]:
    """TTFT (first non-empty text) and total time of one stream; `chunks` yields texts."""
    start = time.perf_counter()
    first = None
    count = 0
    for text in chunks():
        count += 1
        if text and first is None:
            first = time.perf_counter() - start
    return {"ttft_s": first if first is not None else float("nan"), "total_s": time.perf_counter() - start,
            "chunks": count}


def raw_stream_texts(client: grpcclient.InferenceServerClient, inputs: list[Any]) -> Any:
    """The cumulative texts of a raw decoupled stream, until PyTriton's empty final response."""
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        client.async_stream_infer(STREAMING, inputs, enable_empty_final_response=True)
        while True:
            result, error = responses.get(timeout=600)
            if error is not None:
                raise error
            outputs = result.as_numpy("outputs")
            if outputs is not None:
                yield outputs[0][0].decode("utf-8")
            if result.get_response().parameters["triton_final_response"].bool_param:
                return
    finally:
        client.stop_stream()


def median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def parameters(shape: str, layers: int | None) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from steerlm.serve.hf import SHAPES

    settings = {**SHAPES[shape], **({"num_hidden_layers": layers} if layers else {})}
    with torch.device("meta"):
        return sum(p.numel() for p in LlamaForCausalLM(LlamaConfig(**settings)).parameters())


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           text=True, check=False)
    return found.stdout.strip().splitlines()[0] if found.returncode == 0 and found.stdout.strip() else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    from langchain_steerlm import ChatSteerLM

    shape, device = ("tiny", "cpu") if args.tiny else ("llama3-8b", args.device)
    options = [f"shape={shape}", "ignore_eos=true", *([f"layers={args.layers}"] if args.layers else []),
               *([f"device={device}"] if device else []), *([f"dtype={args.dtype}"] if args.dtype else [])]
    libs = Path(sysconfig.get_paths()["purelib"]) / "nvidia_pytriton.libs"  # libcudart for the workspace copy
    env = {"LD_LIBRARY_PATH": str(libs)} if libs.is_dir() else {}
    if args.tiny:
        env["OMP_NUM_THREADS"] = "1"  # a tiny model gains nothing from threads that spin against the clients
    if args.stub_venv:
        env["STEERLM_STUB_VENV"] = str(Path(args.stub_venv).resolve())
    extra = ["--backend", "hf-random", "--max-batch-size", str(max(8, args.batch_size)),
             *[a for o in options for a in ("--backend-option", o)]]
    started = time.perf_counter()
    with BenchServer(stub_launcher=bool(args.stub_venv), preset="hf", extra_args=extra, env=env,
                     startup_timeout=900.0) as server:
        ready_s = time.perf_counter() - started
        common = {"profile": MODEL, "url": server.grpc_url, "max_tokens": args.max_tokens, "timeout": 600.0}
        streamer = ChatSteerLM(model=STREAMING, **common)
        batcher = ChatSteerLM(model=MODEL, **common)
        raw = grpcclient.InferenceServerClient(server.grpc_address)
        question, batch = QUESTIONS[0], QUESTIONS[: args.batch_size]

        def ours_stream() -> dict[str, float]:
            return timed_stream(lambda: (chunk.text for chunk in streamer.stream(question)))

        def raw_stream() -> dict[str, float]:
            return timed_stream(lambda: raw_stream_texts(raw, stream_inputs))

        def ours_batch() -> dict[str, float]:
            start = time.perf_counter()
            batcher.batch(batch)
            return {"total_s": time.perf_counter() - start}

        def raw_batch() -> dict[str, float]:
            start = time.perf_counter()
            raw.infer(MODEL, batch_inputs, client_timeout=600.0)
            return {"total_s": time.perf_counter() - start}

        ours_stream()
        stream_inputs = replay(server.last_request(STREAMING))
        ours_batch()
        batch_inputs = replay(server.last_request(MODEL))
        tokens = raw_stream()["chunks"]  # one response per generated token
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in ("ours_stream", "raw_stream", "ours_batch",
                                                                        "raw_batch")}
        pairs = (("ours_stream", ours_stream, "raw_stream", raw_stream),
                 ("ours_batch", ours_batch, "raw_batch", raw_batch))
        for index in range(args.warmup + args.repeats):
            for a, run_a, b, run_b in pairs:
                order = ((a, run_a), (b, run_b)) if index % 2 == 0 else ((b, run_b), (a, run_a))
                for name, call in order:
                    sample = call()
                    if index >= args.warmup:
                        samples[name].append(sample)
        prompt = server.last_request(STREAMING)["inputs"]["prompts"]["data"][0]
        raw.close()

    def stream_summary(name: str) -> dict[str, Any]:
        total = median(samples[name], "total_s")
        return {"ttft_ms": round(median(samples[name], "ttft_s") * 1000, 3), "total_s": round(total, 4),
                "tokens_per_s": round(tokens / total, 2),
                "ttft_ms_all": [round(s["ttft_s"] * 1000, 3) for s in samples[name]]}

    def batch_summary(name: str) -> dict[str, Any]:
        total = median(samples[name], "total_s")
        return {"total_s": round(total, 4), "tokens_per_s": round(args.batch_size * tokens / total, 2),
                "total_s_all": [round(s["total_s"], 4) for s in samples[name]]}

    streaming: dict[str, Any] = {"raw": stream_summary("raw_stream"), "chatsteerlm": stream_summary("ours_stream")}
    batching: dict[str, Any] = {"raw": batch_summary("raw_batch"), "chatsteerlm": batch_summary("ours_batch")}
    for result in (streaming, batching):
        result["throughput_ratio"] = round(result["chatsteerlm"]["tokens_per_s"] / result["raw"]["tokens_per_s"], 4)
    streaming["ttft_delta_ms"] = round(streaming["chatsteerlm"]["ttft_ms"] - streaming["raw"]["ttft_ms"], 3)
    met = {
        "streaming_throughput": streaming["throughput_ratio"] >= TARGETS["throughput_ratio_min"],
        "batching_throughput": batching["throughput_ratio"] >= TARGETS["throughput_ratio_min"],
        "ttft": streaming["ttft_delta_ms"] <= TARGETS["ttft_delta_ms_max"],
    }
    import torch

    return {
        "benchmark": "gpu_e2e", "mode": "cpu-smoke" if args.tiny else "gpu",
        "command": " ".join(["python", *sys.argv]), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"gpu": gpu_name(), "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "cuda": torch.version.cuda},
        "model": {"shape": shape, "layers": args.layers or "all", "parameters": parameters(shape, args.layers),
                  "weights": "random", "dtype": args.dtype or ("float32" if device == "cpu" else "auto (bf16 on GPU)")},
        "settings": {"max_tokens": args.max_tokens, "generated_tokens": tokens, "batch_size": args.batch_size,
                     "warmup": args.warmup, "repeats": args.repeats, "prompt_chars": len(prompt)},
        "server_ready_s": round(ready_s, 1),
        "streaming": streaming, "batching": batching, "targets": {**TARGETS, "met": met},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on the tiny shape (writes no results)")
    parser.add_argument("--layers", type=int, help="decoder layers (default: all 32 of Llama-3-8B)")
    parser.add_argument("--device", help="server device (default: auto = cuda with bfloat16)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stub-venv", help="numpy<2 venv for PyTriton's Python-backend stub (docs/serving.md)")
    parser.add_argument("--dtype", help="server dtype (default: auto = bfloat16 on GPU, float32 on CPU)")
    parser.add_argument("--out", help="results file (default: benchmarks/results/gpu_e2e.json; none with --tiny)")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    out = Path(args.out) if args.out else (None if args.tiny else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
