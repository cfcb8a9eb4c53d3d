"""The test kit (``steerlm_testing``) stays out of the product: ``steerlm`` never imports it, holds no
directive parser or fault injection, and serves only real backends until the kit registers its own."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import steerlm

PRODUCT = Path(steerlm.__file__).resolve().parent
DIRECTIVES = re.compile(r"\[\[(say|echo|sleep|raise|error|delay|stream_fail_after|stream_raise_after|rewards)\b")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_product_never_imports_the_kit() -> None:
    offenders = [str(p.relative_to(PRODUCT)) for p in PRODUCT.rglob("*.py")
                 if any(m.split(".")[0] == "steerlm_testing" for m in _imported_modules(p))]
    assert offenders == []


def test_product_holds_no_prompt_directives_or_process_killing() -> None:
    killers = []
    for path in PRODUCT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not DIRECTIVES.search(text), path
        if "SIGKILL" in text or "killpg" in text:
            killers.append(str(path.relative_to(PRODUCT)))
    # only the server's cleanup watcher kills, and only processes that carry its own server's token
    assert killers == ["serve/cleanup.py"]


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_product_registry_has_only_real_backends_until_the_kit_registers() -> None:
    code = ("from steerlm.serve import registry as r; "
            "print(sorted(r.BACKENDS), sorted(r.PRESETS), r.DEFAULT_PRESET, r.DEFAULT_BACKEND)")
    assert _run(code) == "['hf', 'hf-random'] ['demo', 'hf', 'none'] hf hf"
    code = ("from steerlm.serve import registry as r; from steerlm_testing.presets import register; register(); "
            "register(); print(sorted(r.PRESETS), [m.backend for m in r.PRESETS['reward']])")
    assert _run(code) == ("['current-servers', 'demo', 'docs', 'ensemble', 'hf', 'minimal', 'none', 'reward', 'test'] "
                          "['scripted-reward', 'scripted-reward', 'scripted-steered']")


def test_kit_entry_point_defaults_to_the_test_preset_and_scripted_model_backend() -> None:
    from steerlm_testing.serve import build_parser

    args = build_parser().parse_args(["--model", "extra=current"])
    assert (args.preset, args.model_backend) == ("test", "scripted")
    from steerlm.cli import build_parser as product_parser

    product = product_parser().parse_args(["serve"])
    assert (product.preset, product.model_backend) == ("hf", "hf")
