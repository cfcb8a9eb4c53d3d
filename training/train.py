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
from lora import add_lora, load_adapter, low_rank_deltas, save_adapter, train_linear_weights, train_new_rows

from steerlm import format_prompt
from steerlm.serve.adapter import ADAPTER_PATH, merge_adapter
from steerlm.serve.smollm import ensure_base_model
from steerlm.serve.tiny_model import END_OF_TURN

HERE = Path(__file__).resolve().parent
PROFILE = "Llama2-70B-SteerLM-Chat"


def parse_label(label: str) -> dict[str, int]:
    return {key: int(value) for key, value in (pair.split(":") for pair in label.split(","))}


def examples(tokenizer: Any, path: Path, max_tokens: int) -> list[tuple[list[int], int, dict[str, int], str]]:
    """``(token ids, prompt length, labels, question)`` per record; responses are cut to fit `max_tokens`."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        user, assistant = record["conversations"]
        labels = parse_label(assistant["label"])
        prompt = format_prompt([{"role": "user", "content": user["value"]}], profile=PROFILE, attributes=labels)
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        target_ids = tokenizer(assistant["value"] + "\n" + END_OF_TURN, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + target_ids)[:max_tokens]
        out.append((ids, len(prompt_ids), labels, user["value"]))
    return out


def sorted_batches(items: list[Any], size: int, rng: random.Random) -> list[list[Any]]:
    """Shuffled batches of similar lengths (less padding): sort by length, chunk, shuffle the chunks."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    ordered = sorted(shuffled, key=lambda item: len(item[0]))
    chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    rng.shuffle(chunks)
    return chunks


def grouped_batches(items: list[Any], size: int, rng: random.Random) -> list[list[Any]]:
    """Shuffled batches that keep each question's responses together (short, middle and long answers to
    the same question in one batch): the gradient then contrasts the verbosity labels directly, instead of
    swinging between batches of only short and only long answers."""
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(item[3], []).append(item)
    order = list(groups.values())
    rng.shuffle(order)
    chunks: list[list[Any]] = [[]]
    for group in order:
        if chunks[-1] and len(chunks[-1]) + len(group) > size:
            chunks.append([])
        chunks[-1].extend(group)
    return chunks


def collate(chunk: list[tuple[list[int], int, dict[str, int], str]], pad_id: int, sentence_ends: torch.Tensor,
            decision_weight: float) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The model inputs, the target of each position (-100: no loss) and each target's loss weight:
    `decision_weight` for a response token that follows the end of a sentence (where the answer either
    ends its turn or goes on: the choice verbosity steers), 1 for the other response tokens."""
    width = max(len(ids) for ids, *_ in chunk)
    input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(chunk), width), dtype=torch.long)
    targets = torch.full((len(chunk), width), -100, dtype=torch.long)
    for row, (ids, prompt_length, *_) in enumerate(chunk):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        targets[row, prompt_length - 1:len(ids) - 1] = torch.tensor(ids[prompt_length:])  # next-token targets
    weights = (targets != -100).float()
    decisions = sentence_ends[input_ids] & (targets != -100)  # the current token ends a sentence
    weights[decisions] = decision_weight
    return {"input_ids": input_ids, "attention_mask": attention}, targets, weights


def sentence_end_ids(tokenizer: Any) -> torch.Tensor:
    """A mask over the vocabulary: tokens whose text ends with ``.``, ``!`` or ``?``."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return torch.tensor([p is not None and p.rstrip("ĊĠ \n").endswith((".", "!", "?")) for p in pieces])


def weighted_loss_sum(model: Any, inputs: dict[str, torch.Tensor], targets: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """The weighted sum of the target tokens' losses. Logits are computed at the target positions only: the
    output layer (49 k words) over the prompt's positions would be a fifth of the step's work, for no loss."""
    hidden = model.model(**inputs).last_hidden_state
    scored = targets != -100
    logits = model.lm_head(hidden[scored])
    losses = torch.nn.functional.cross_entropy(logits.float(), targets[scored], reduction="none")
    return (losses * weights[scored]).sum()


def micro_batches(chunk: list[Any], size: int) -> list[list[Any]]:
    """`chunk` cut into micro-batches of `size` similar lengths (all of it when `size` is 0): the same
    gradient as one padded batch, with a third less padding to compute on a CPU."""
    if size <= 0:
        return [chunk]
    ordered = sorted(chunk, key=lambda item: len(item[0]))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def resumed_delta(path: Path | None, name: str, device: str) -> torch.Tensor | float:
    """What the adapter at `path` added to layer `name` (0 without one)."""
    if path is None:
        return 0.0
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        a, b = (handle.get_tensor(f"{name}.lora_{x}").float() for x in "AB")
    return (float(meta["alpha"]) / int(meta["rank"]) * (b @ a)).to(device)


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
    parser.add_argument("--decision-weight", type=float, default=1.0,
                        help="loss weight of the token after a sentence end (end the turn or go on?)")
    parser.add_argument("--micro-batch", type=int, default=0,
                        help="compute each batch as micro-batches of N similar lengths (less padding; 3 on a CPU)")
    parser.add_argument("--frozen-dtype", default="float32", choices=["float32", "bfloat16"],
                        help="dtype of the frozen base weights (bfloat16: no re-casting at every step under autocast)")
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"],
                        help="attention implementation (eager: faster backward on a CPU for these short sequences)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after N steps (the schedule is kept)")
    parser.add_argument("--full", action="store_true",
                        help="fine-tune the linear weights fully (starting from --resume merged in), then save the "
                             "change as its best rank --rank approximation (truncated SVD)")
    parser.add_argument("--grouped", action="store_true",
                        help="batch each question's responses together (default: batches of similar lengths)")
    parser.add_argument("--train-digits", action="store_true",
                        help="also train the embedding rows of the digits 0-9 (the label values)")
    parser.add_argument("--resume", type=Path, help="continue from this adapter (a copy: --output overwrites)")
    parser.add_argument("--save-every", type=int, default=10, help="also write the adapter every N steps")
    parser.add_argument("--output", type=Path, default=ADAPTER_PATH)
    parser.add_argument("--base", type=Path, help="a prepared base checkpoint (default: built from the package)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where to train (default: cuda when present, else cpu)")
    parser.add_argument("--log", type=Path, default=HERE / "train_log.txt")
    args = parser.parse_args()
    if args.frozen_dtype == "bfloat16" and args.autocast != "bfloat16":
        parser.error("--frozen-dtype bfloat16 needs --autocast bfloat16 (float32 inputs cannot meet bfloat16 weights)")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal floats (tiny gradients, squared) are slow on a CPU
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = args.base or ensure_base_model()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation=args.attention)
    first_new_row = len(tokenizer) - 3  # the three markers were appended last
    data = examples(tokenizer, args.data, args.max_tokens)
    sentence_ends = sentence_end_ids(tokenizer)
    digits = tuple(tokenizer.convert_tokens_to_ids(list("0123456789"))) if args.train_digits else ()
    if args.full:
        if args.resume:
            merge_adapter(model, args.resume)
        layers = train_linear_weights(model)
        base_weights = {name: layer.weight.detach().clone() for name, layer in layers.items()}
        embedding = train_new_rows(model, first_new_row)
        for name in base_weights:  # the change is measured from the base model, not from --resume
            base_weights[name] = base_weights[name] - resumed_delta(args.resume, name, "cpu")
    else:
        wrapped = add_lora(model, args.rank, args.alpha)
        embedding = train_new_rows(model, first_new_row, digits)
        if args.resume:
            load_adapter(args.resume, wrapped, embedding, first_new_row)
    model.to(args.device)
    for parameter in model.parameters():
        if not parameter.requires_grad:
            parameter.data = parameter.data.to(getattr(torch, args.frozen_dtype))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    batches = grouped_batches if args.grouped else sorted_batches
    steps_per_epoch = len(batches(data, args.batch, random.Random(args.seed)))
    total = max(1, int(steps_per_epoch * args.epochs))
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    verbosity = [labels["verbosity"] for _, _, labels, _ in data]
    header = (f"{len(data)} examples (verbosity counts {[verbosity.count(v) for v in range(5)]}), "
              f"{sum(len(ids) for ids, *_ in data)} tokens; {total} steps of {args.batch}; "
              f"lr {args.lr}, rank {args.rank}, alpha {args.alpha}, seed {args.seed}, resume {args.resume}, "
              f"decision weight {args.decision_weight}, micro-batch {args.micro_batch or args.batch}, "
              f"max steps {args.max_steps or total}, frozen {args.frozen_dtype}, "
              f"attention {args.attention}, "
              f"torch {torch.__version__}, {args.device}, {args.threads} thread(s), autocast {args.autocast}")
    with args.log.open("a" if args.resume else "w", encoding="utf-8") as log:
        log.write(header + "\n")
    print(header, flush=True)
    model.train()
    began = time.time()
    plan: list[list[Any]] = []
    while len(plan) < total:
        plan.extend(batches(data, args.batch, rng))
    steps = min(total, args.max_steps) if args.max_steps else total
    for step, chunk in enumerate(plan[:steps], start=1):
        parts = [collate(part, tokenizer.pad_token_id, sentence_ends, args.decision_weight)
                 for part in micro_batches(chunk, args.micro_batch)]
        total_weight = sum(float(weights.sum()) for _, _, weights in parts)
        loss = torch.zeros(())
        for inputs, targets, weights in parts:  # gradients add up to those of the whole batch's mean loss
            with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16,
                                enabled=args.autocast == "bfloat16"):
                part_loss = weighted_loss_sum(model, {k: v.to(args.device) for k, v in inputs.items()},
                                              targets.to(args.device), weights.to(args.device)) / total_weight
            part_loss.backward()
            loss = loss + part_loss.detach().cpu()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        line = f"step {step}/{total} loss {loss.item():.4f} elapsed {time.time() - began:.0f} s"
        with args.log.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
        print(line, flush=True)
        if step % args.save_every == 0 or step == steps:
            info = {"examples": len(data), "steps": total, "steps_done": step, "batch": args.batch,
                    "lr": args.lr, "seed": args.seed, "epochs": args.epochs, "resumed": bool(args.resume),
                    "decision_weight": args.decision_weight,
                    "minutes": round((time.time() - began) / 60, 1), "last_loss": round(loss.item(), 4)}
            if args.full:
                save_adapter(args.output, low_rank_deltas(layers, base_weights, args.rank), embedding, first_new_row,
                             args.rank, float(args.rank), info)
            else:
                save_adapter(args.output, wrapped, embedding, first_new_row, args.rank, args.alpha, info, digits)
    minutes = (time.time() - began) / 60
    with args.log.open("a", encoding="utf-8") as log:
        log.write(f"done in {minutes:.1f} min; adapter {args.output.name} "
                  f"({args.output.stat().st_size / 1e6:.1f} MB)\n")
    print(f"done in {minutes:.1f} min", flush=True)


if __name__ == "__main__":
    main()
