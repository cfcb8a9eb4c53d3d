"""Step 1 of SteerLM in miniature: the base model answers every question in its own chat template.

Writes ``data/answers.jsonl``: one ``{"question", "answer", "finished"}`` per training question. Greedy decoding with a
mild repetition penalty, batched with left padding, in bfloat16; deterministic for a given torch build.

    nice -n 19 python training/generate.py [--limit N] [--batch 64] [--max-new-tokens 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from questions import train_questions

from steerlm.serve.smollm import ensure_base_model

DATA = Path(__file__).resolve().parent / "data"


def answer_all(model: Any, tokenizer: Any, questions: list[str], batch: int,
               max_new_tokens: int) -> list[dict[str, Any]]:
    tokenizer.padding_side = "left"
    rows: list[dict[str, Any]] = []
    for start in range(0, len(questions), batch):
        chunk = questions[start:start + batch]
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                 tokenize=False) for q in chunk]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        began = time.time()
        with torch.no_grad():
            out = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                                 repetition_penalty=1.1, no_repeat_ngram_size=4,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        for question, ids in zip(chunk, out[:, encoded["input_ids"].shape[1]:], strict=True):
            finished = bool((ids == tokenizer.eos_token_id).any())
            text = tokenizer.decode(ids, skip_special_tokens=True).strip()
            rows.append({"question": question, "answer": text, "finished": finished})
        print(f"{start + len(chunk)}/{len(questions)} answered ({time.time() - began:.0f} s for this batch)",
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="only the first N training questions")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy machine")
    parser.add_argument("--dtype", default="bfloat16", help="bfloat16 (fast on CPUs with AMX) or float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_base_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype)).eval()
    DATA.mkdir(exist_ok=True)
    began = time.time()
    questions = train_questions()[:args.limit] if args.limit else train_questions()
    rows = answer_all(model, tokenizer, questions, args.batch, args.max_new_tokens)
    with (DATA / "answers.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    print(f"done in {time.time() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
