"""The Python code samples of README.md and docs/*.md, read straight from the Markdown.

A sample is a fenced block opened with three backticks and ``python``. The samples of one page run in
order in one namespace, like cells of a notebook, so a page can build a model in one block and use it in
the next. A block directly preceded by ``<!-- sample: no-run REASON -->`` is only compiled, never run
(for code that needs what no test machine has, e.g. a GPU or a remote 70B deployment); REASON is required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                    re.MULTILINE | re.DOTALL)
_NO_RUN = re.compile(r"<!--\s*sample:\s*no-run\s+(?P<reason>\S[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Sample:
    """One Python block: where it is, its code, and why it is not run (None: it runs)."""

    page: str
    line: int
    code: str
    no_run: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def samples(page: Path) -> list[Sample]:
    """The page's Python samples, in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for match in _FENCE.finditer(text):
        if match["lang"] not in ("python", "py"):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = _NO_RUN.search(before)
        indent = len(match["indent"])
        code = "\n".join(line[indent:] for line in match["body"].splitlines())
        out.append(Sample(str(page.relative_to(ROOT)), text.count("\n", 0, match.start()) + 1, code,
                          reason["reason"] if reason else None))
    return out
