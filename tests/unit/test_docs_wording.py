"""README.md and docs/ name models by their model names, never by insider references."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
INSIDER = {
    "seed file": re.compile(r"\bseeds?/\d"),
    "design-notes section": re.compile(r"\b(?:REFERENCE|DESIGN)(?:\.md)?\s*§|§\s*\d"),
    "design-notes file": re.compile(r"\b(?:REFERENCE|DESIGN)\.md\b"),
    "design option": re.compile(r"\boption [A-Z]\b"),
    "seed number": re.compile(r"\(00\d\)|\bas 00\d\b|\b00\d's\b|\bseeds/?00\d"),
}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_has_no_insider_words(page: Path) -> None:
    found = [f"line {number}: {kind}: {match.group(0)!r}"
             for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             for kind, pattern in INSIDER.items() for match in pattern.finditer(line)]
    assert not found, found


@pytest.mark.parametrize("text", ["see seeds/000", "(REFERENCE §2.3)", "option D", "| Llama2 (000) |",
                                  "as 000;", "003's table", "DESIGN.md"])
def test_the_patterns_catch_what_they_are_for(text: str) -> None:
    assert any(pattern.search(text) for pattern in INSIDER.values())
