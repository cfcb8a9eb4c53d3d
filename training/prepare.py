"""Step 1b: turn the base model's answers into NeMo conversation records of several lengths.

Each answer is cut at its last complete sentence (generation stops at a token budget) and yields up to
three responses to its question: the first sentence, the first two or three sentences (alternating by
question) and the whole answer. Their attribute labels are not set here: ``steerlm annotate`` adds them
(see ``label.sh``). Writes ``data/conversations.jsonl``.

    python training/prepare.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from steerlm.profiles import STEERLM_SYSTEM_PROMPT

DATA = Path(__file__).resolve().parent / "data"
_FILLER = re.compile(r"^(sure|certainly|of course|absolutely|great question|yes|no)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(text: str) -> list[str]:
    """The complete sentences of `text`, in order (a trailing fragment without an end mark is dropped).
    Lines that are list items or headings stay whole: the split only happens after ``.``, ``!`` or ``?``."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    if parts and not parts[-1].rstrip().endswith((".", "!", "?")):
        parts.pop()
    return parts


def join(parts: list[str]) -> str:
    return " ".join(parts)


def responses(answer: str, index: int) -> list[str]:
    """Short, middle and full responses cut from one answer (duplicates and empty ones dropped)."""
    parts = sentences(answer)
    if not parts:
        return []
    # the full answer keeps its own line breaks: cut it where its last complete sentence ends
    last = parts[-1]
    full = answer.strip()[: answer.strip().rfind(last) + len(last)]
    prose = []  # the leading plain sentences (a list or a heading ends them)
    for part in parts:
        if "\n" in part or re.search(r"(^|\s)\d+\.$", part):
            break
        if prose or not (_FILLER.match(part) and len(part.split()) < 8):  # no "Sure, happy to help." alone
            prose.append(part)
    if not prose:
        return [full]
    middle = join(prose[: 2 + index % 2])
    return list(dict.fromkeys(r for r in (prose[0], middle, full) if r))


def record(question: str, response: str) -> dict[str, Any]:
    return {
        "system": STEERLM_SYSTEM_PROMPT,
        "mask": "User",
        "type": "VALUE_TO_TEXT",
        "conversations": [{"from": "User", "value": question, "label": None},
                          {"from": "Assistant", "value": response, "label": None}],
    }


def main() -> None:
    rows = [json.loads(line) for line in (DATA / "answers.jsonl").read_text(encoding="utf-8").splitlines() if line]
    records = [record(row["question"], response) for index, row in enumerate(rows)
               for response in responses(row["answer"], index)]
    with (DATA / "conversations.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in records)
    print(f"{len(records)} conversations from {len(rows)} answers")


if __name__ == "__main__":
    main()
