#!/usr/bin/env bash
# Step 2 of SteerLM in miniature: label every response with `steerlm annotate`, over the wire, against a
# local reward-model server whose scorer rates the HelpSteer attributes from text features
# (steerlm.serve.text_scorer). Reads data/conversations.jsonl, writes data/labelled.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m steerlm serve --preset none --model reward_model=reward --backend steerlm.serve.text_scorer:TextFeatureScorer \
  --http-port "$PORT" --exit-with-parent &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
rm -f training/data/labelled.jsonl
"$PY" -m steerlm annotate training/data/conversations.jsonl training/data/labelled.jsonl \
  --url "http://127.0.0.1:$PORT" --ready-timeout 120 --quiet
