"""A quick, in-process steering check of an adapter (no server): greedy answers to the held-out questions
at verbosity 0, 2 and 4, and their mean lengths in words.

`benchmarks/steering.py` is the measurement of record (it asks `steerlm serve --preset demo` over the wire);
this script answers the same prompts with the same model through ``transformers`` directly, so candidate
adapters can be compared while training (on a GPU in seconds, on a CPU in minutes).

    python training/evaluate.py --adapter src/steerlm/serve/adapters/smollm2-135m-steerlm-lora.safetensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from questions import held_out_questions

from steerlm import format_prompt
from steerlm.serve.adapter import ADAPTER_PATH, merge_adapter
from steerlm.serve.smollm import ensure_base_model
from steerlm.serve.tiny_model import END_OF_TURN

PROFILE = "Llama2-70B-SteerLM-Chat"
LEVELS = (0, 2, 4)


def answers(model: Any, tokenizer: Any, questions: list[str], verbosity: int, max_tokens: int,
            device: str) -> list[str]:
    """Greedy answers, stopped at the end of the turn (as the server's HF backend stops)."""
    prompts = [format_prompt([{"role": "user", "content": q}], profile=PROFILE, attributes={"verbosity": verbosity})
               for q in questions]
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    stops = [tokenizer.convert_tokens_to_ids(END_OF_TURN), tokenizer.eos_token_id]
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=max_tokens, do_sample=False, eos_token_id=stops,
                             pad_token_id=tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=False)
    return [text.split(END_OF_TURN)[0].replace(tokenizer.pad_token or "\0", "").strip() for text in texts]


def evaluate(adapter: Path | None, base: Path, questions: list[str], max_tokens: int, device: str) -> dict[str, Any]:
    """Mean words per verbosity level, the 4:0 ratio and two example pairs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        merge_adapter(model, adapter)
    model.to(device).eval()
    replies = {level: answers(model, tokenizer, questions, level, max_tokens, device) for level in LEVELS}
    words = {level: [len(text.split()) for text in replies[level]] for level in LEVELS}
    means = {str(level): round(statistics.mean(words[level]), 1) for level in LEVELS}
    return {"adapter": str(adapter), "questions": len(questions), "mean_words": means,
            "ratio_4_to_0": round(statistics.mean(words[4]) / max(statistics.mean(words[0]), 1e-9), 2),
            "shorter_at_0_than_4": sum(a < b for a, b in zip(words[0], words[4], strict=True)),
            "examples": [{"question": questions[i], "verbosity_0": replies[0][i], "verbosity_4": replies[4][i]}
                         for i in (0, len(questions) // 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, default=ADAPTER_PATH, help="'none': the base model alone")
    parser.add_argument("--base", type=Path, help="a prepared base checkpoint (default: built from the package)")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", type=Path, help="also append the result, one JSON line, to this file")
    args = parser.parse_args()
    began = time.perf_counter()
    adapter = None if str(args.adapter) == "none" else args.adapter
    result = evaluate(adapter, args.base or ensure_base_model(), held_out_questions()[:args.questions],
                      args.max_tokens, args.device)
    result["seconds"] = round(time.perf_counter() - began, 1)
    line = json.dumps(result, ensure_ascii=False)
    if args.output:
        with args.output.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    print(line, flush=True)


if __name__ == "__main__":
    main()
