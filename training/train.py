"""Step 3 of SteerLM in miniature: attribute-conditioned fine-tuning (LoRA) in the Llama2-70B-SteerLM-Chat
template.

Every labelled record of ``data/labelled.jsonl`` becomes one example: the prompt is exactly what the client
sends (`steerlm.format_prompt` with the record's nine attribute labels on the ``<extra_id_2>`` line) and the
target is the response followed by ``\\n<extra_id_1>``, the end of the turn; the loss is on the target only.
Trains a rank-`--rank` LoRA on all linear layers plus the embedding rows of the three new marker tokens,
seeded, computing in bfloat16 (autocast; the weights and the optimizer stay float32), and writes the adapter
(``src/steerlm/serve/adapters/``) and a log.

    nice -n 19 python training/train.py [--epochs 1] [--batch 8] [--lr 1e-3] [--rank 8]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lora import add_lora, save_adapter, train_new_rows

from steerlm import format_prompt
from steerlm.serve.adapter import ADAPTER_PATH
from steerlm.serve.smollm import ensure_base_model
from steerlm.serve.tiny_model import END_OF_TURN

HERE = Path(__file__).resolve().parent
PROFILE = "Llama2-70B-SteerLM-Chat"


def parse_label(label: str) -> dict[str, int]:
    return {key: int(value) for key, value in (pair.split(":") for pair in label.split(","))}


def examples(tokenizer: Any, path: Path, max_tokens: int) -> list[tuple[list[int], int, dict[str, int]]]:
    """``(token ids, prompt length, labels)`` per record; responses are cut to fit `max_tokens`."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        user, assistant = record["conversations"]
        labels = parse_label(assistant["label"])
        prompt = format_prompt([{"role": "user", "content": user["value"]}], profile=PROFILE, attributes=labels)
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        target_ids = tokenizer(assistant["value"] + "\n" + END_OF_TURN, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + target_ids)[:max_tokens]
        out.append((ids, len(prompt_ids), labels))
    return out


def batches(items: list[Any], size: int, rng: random.Random) -> list[list[Any]]:
    """Shuffled batches of similar lengths (less padding): sort by length, chunk, shuffle the chunks."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    ordered = sorted(shuffled, key=lambda item: len(item[0]))
    chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    rng.shuffle(chunks)
    return chunks


def collate(chunk: list[tuple[list[int], int, dict[str, int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _, _ in chunk)
    input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(chunk), width), dtype=torch.long)
    labels = torch.full((len(chunk), width), -100, dtype=torch.long)
    for row, (ids, prompt_length, _) in enumerate(chunk):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        labels[row, prompt_length:len(ids)] = torch.tensor(ids[prompt_length:])
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE / "data" / "labelled.jsonl")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy machine")
    parser.add_argument("--autocast", default="bfloat16", help="compute dtype (bfloat16: fast on CPUs with AMX; "
                                                               "float32: no autocast)")
    parser.add_argument("--save-every", type=int, default=10, help="also write the adapter every N steps")
    parser.add_argument("--output", type=Path, default=ADAPTER_PATH)
    parser.add_argument("--log", type=Path, default=HERE / "train_log.txt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = ensure_base_model()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    first_new_row = len(tokenizer) - 3  # the three markers were appended last
    data = examples(tokenizer, args.data, args.max_tokens)
    wrapped = add_lora(model, args.rank, args.alpha)
    embedding = train_new_rows(model, first_new_row)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    steps_per_epoch = -(-len(data) // args.batch)
    total = max(1, int(steps_per_epoch * args.epochs))
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    verbosity = [labels["verbosity"] for _, _, labels in data]
    header = (f"{len(data)} examples (verbosity counts {[verbosity.count(v) for v in range(5)]}), "
              f"{sum(len(ids) for ids, _, _ in data)} tokens; {total} steps of {args.batch}; "
              f"lr {args.lr}, rank {args.rank}, alpha {args.alpha}, seed {args.seed}, "
              f"torch {torch.__version__}, {args.threads} thread(s), autocast {args.autocast}")
    args.log.write_text(header + "\n", encoding="utf-8")
    print(header, flush=True)
    model.train()
    began = time.time()
    plan: list[list[Any]] = []
    while len(plan) < total:
        plan.extend(batches(data, args.batch, rng))
    for step, chunk in enumerate(plan[:total], start=1):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bfloat16"):
            loss = model(**collate(chunk, tokenizer.pad_token_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        line = f"step {step}/{total} loss {loss.item():.4f} elapsed {time.time() - began:.0f} s"
        with args.log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
        print(line, flush=True)
        if step % args.save_every == 0 or step == total:
            info = {"examples": len(data), "steps": total, "steps_done": step, "batch": args.batch,
                    "lr": args.lr, "seed": args.seed, "epochs": args.epochs,
                    "minutes": round((time.time() - began) / 60, 1), "last_loss": round(loss.item(), 4)}
            save_adapter(args.output, wrapped, embedding, first_new_row, args.rank, args.alpha, info)
    minutes = (time.time() - began) / 60
    with args.log.open("a", encoding="utf-8") as log:
        log.write(f"done in {minutes:.1f} min; adapter {args.output.name} "
                  f"({args.output.stat().st_size / 1e6:.1f} MB)\n")
    print(f"done in {minutes:.1f} min", flush=True)


if __name__ == "__main__":
    main()
