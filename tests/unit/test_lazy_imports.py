"""`import langchain_steerlm` loads only what a chat model needs; the rest loads on first use."""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ["langchain_steerlm.llms", "langchain_steerlm.rag", "langchain_steerlm.tools", "tenacity", "yaml",
        "steerlm.client.sync", "steerlm.client.aio", "tritonclient"]


def _loaded(statement: str) -> list[str]:
    code = f"{statement}; import sys, json; print(json.dumps([m for m in {LAZY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return list(json.loads(out))


def test_importing_the_package_leaves_rarely_used_modules_unloaded() -> None:
    assert _loaded("import langchain_steerlm") == []


def test_the_lazy_names_still_import_and_work() -> None:
    loaded = _loaded("from langchain_steerlm import SteerLM, closed_qa_chain, format_documents, with_context; "
                     "from langchain_steerlm import ChatSteerLM; "
                     "ChatSteerLM(model='Llama2-70B-SteerLM-Chat', url='grpc://127.0.0.1:9').bind_tools([])")
    assert {"langchain_steerlm.llms", "langchain_steerlm.rag", "langchain_steerlm.tools"} <= set(loaded)
