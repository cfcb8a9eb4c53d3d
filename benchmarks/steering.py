"""Measured steering of the demo model: does the answer's length follow ``verbosity``?

    .venv/bin/python benchmarks/steering.py [--questions 40] [--max-tokens 256]

Starts ``steerlm serve --preset demo`` (SmolLM2-135M-Instruct with the SteerLM adapter) on loopback and
asks every held-out question of ``training/questions.py`` (topics never seen in training) through
`SteerLMClient`, greedily, at ``verbosity`` 0, 2 and 4 (the other attributes at the
``Llama2-70B-SteerLM-Chat`` profile's defaults). Writes ``benchmarks/results/steering.json``: mean answer
words per verbosity, the ratio of verbosity 4 to verbosity 0, how many answers ended their turn by
themselves, and five example pairs (verbosity 0 vs 4); prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from steerlm.client import SteerLMClient
from steerlm.params import GenerationParams
from steerlm.prompts import format_prompt
from steerlm.serve.adapter import DEMO_MODEL
from steerlm_testing import LocalServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training"))
from questions import held_out_questions  # noqa: E402

PROFILE = "Llama2-70B-SteerLM-Chat"
LEVELS = (0, 2, 4)
RESULTS = Path(__file__).parent / "results" / "steering.json"


def ask(client: SteerLMClient, questions: list[str], verbosity: int, max_tokens: int) -> list[Any]:
    prompts = [format_prompt([{"role": "user", "content": q}], profile=PROFILE, attributes={"verbosity": verbosity})
               for q in questions]
    return client.batch(prompts, GenerationParams(max_tokens=max_tokens, top_k=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=40, help="held-out questions to ask (at most 40)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    questions = held_out_questions()[:args.questions]
    began = time.perf_counter()
    answers: dict[int, list[Any]] = {}
    with LocalServer(preset="demo", extra_args=["--max-batch-size", str(len(questions))],
                     startup_timeout=900.0) as server:
        started = time.perf_counter() - began
        with SteerLMClient(DEMO_MODEL, server.grpc_url, profile=PROFILE, timeout=1800.0) as client:
            for level in LEVELS:
                answers[level] = ask(client, questions, level, args.max_tokens)
    words = {level: [len(c.text.split()) for c in answers[level]] for level in LEVELS}
    means = {str(level): round(statistics.mean(words[level]), 1) for level in LEVELS}
    result = {
        "model": DEMO_MODEL,
        "profile": PROFILE,
        "questions": len(questions),
        "max_tokens": args.max_tokens,
        "decoding": "greedy",
        "mean_words": means,
        "median_words": {str(level): statistics.median(words[level]) for level in LEVELS},
        "ratio_4_to_0": round(statistics.mean(words[4]) / max(statistics.mean(words[0]), 1e-9), 2),
        "ended_turn": {str(level): sum(c.finish_reason == "stop" for c in answers[level]) for level in LEVELS},
        "shorter_at_0_than_4": sum(a < b for a, b in zip(words[0], words[4], strict=True)),
        "examples": [{"question": questions[i], "verbosity_0": answers[0][i].text.strip(),
                      "verbosity_4": answers[4][i].text.strip()} for i in range(0, len(questions), 8)][:5],
        "server_start_s": round(started, 1),
        "total_s": round(time.perf_counter() - began, 1),
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("| verbosity | mean words | median words | ended turn |\n|---|---|---|---|")
    for level in LEVELS:
        print(f"| {level} | {means[str(level)]} | {result['median_words'][str(level)]} | "
              f"{result['ended_turn'][str(level)]}/{len(questions)} |")
    print(f"ratio 4:0 = {result['ratio_4_to_0']}; written to {args.output}")


if __name__ == "__main__":
    main()
