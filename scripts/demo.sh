#!/usr/bin/env bash
# Set up the environment if needed, then run the demo: a local Triton server with a tiny embedded
# Llama (built offline on first use), a LangChain RAG chain and a LlamaIndex query streaming from it.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --checkpoint /path/to/hf-model`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m steerlm_demo "$@"
