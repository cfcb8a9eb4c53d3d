"""Annotation without a server: parsing, labels, torn-line recovery, ordering, resume, failures."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from steerlm.annotate import (
    AnnotationError,
    Malformed,
    Record,
    annotate_file,
    labelled_line,
    parse_record,
    record_key,
    recover_output,
    scan_input,
)


def record(i: int, turns: int = 2) -> dict[str, Any]:
    conversations = []
    for t in range(turns):
        conversations.append({"value": f"question {i}.{t} é", "from": "User", "label": None})
        conversations.append({"value": f"answer {i}.{t}", "from": "Assistant", "label": None})
    return {"conversations": conversations, "mask": "User", "system": "kept", "type": "VALUE_TO_TEXT"}


class FakeLabel:
    def __init__(self, label: str) -> None:
        self.label = label


def label_of(prompt: str) -> str:
    """A deterministic fake label derived from the scored turn."""
    reply = prompt.rsplit("<extra_id_1>Assistant\n", 1)[1].removesuffix("\n<extra_id_2>")
    return f"quality:{len(reply) % 5},verbosity:{reply.count('.')}"


class FakeScorer:
    """Records every prompt; answers after a random delay (so records finish out of order)."""

    def __init__(self, fail_on: str | None = None, seed: int = 0) -> None:
        self.sent: list[str] = []
        self.fail_on = fail_on
        self.rng = random.Random(seed)
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, prompts: Sequence[str]) -> list[FakeLabel]:
        self.sent.extend(prompts)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.rng.random() * 0.01)
            if self.fail_on is not None and any(self.fail_on in p for p in prompts):
                raise InterruptedError(f"server failed on {self.fail_on}")
            return [FakeLabel(label_of(p)) for p in prompts]
        finally:
            self.in_flight -= 1


def expected_line(data: dict[str, Any]) -> str:
    parsed = parse_record(json.dumps(data), 1)
    assert isinstance(parsed, Record)
    from steerlm.reward import annotation_prompts

    labels = [label_of(p) for _, p in annotation_prompts(parsed.messages)]
    return labelled_line(parsed, labels).decode("ascii")


def write_input(path: Path, records: list[dict[str, Any]], extra: dict[int, str] | None = None) -> None:
    lines = [json.dumps(r) for r in records]
    for index, text in sorted((extra or {}).items(), reverse=True):
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(source: Path, target: Path, scorer: FakeScorer, **kwargs: Any) -> Any:
    return asyncio.run(annotate_file(source, target, scorer, **kwargs))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{oops", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"mask": "User"}', "'conversations' must be a non-empty list"),
        ('{"conversations": [], "mask": "User"}', "'conversations' must be a non-empty list"),
        ('{"conversations": [{"value": 1, "from": "User"}]}', "turn 0 needs string"),
        ('{"conversations": [{"value": "x"}]}', "turn 0 needs string"),
        ('{"conversations": [{"value": "x", "from": "User"}], "mask": 3}', "'mask' must be a string"),
        ('{"conversations": [{"value": "x", "from": "Assistant"}], "mask": "User"}', "cannot be rendered"),
    ],
)
def test_malformed_lines_say_why(text: str, reason: str) -> None:
    parsed = parse_record(text, 7)
    assert isinstance(parsed, Malformed) and parsed.line == 7 and reason in parsed.reason


def test_parse_record_roles_and_blank_lines() -> None:
    assert parse_record("   \n", 1) is None
    parsed = parse_record(json.dumps({"conversations": [{"value": "a", "from": "Human"},
                                                         {"value": "b", "from": "gpt"}], "mask": "Human"}), 2)
    assert isinstance(parsed, Record)
    assert [m.role for m in parsed.messages] == ["user", "assistant"] and parsed.assistant_turns == (1,)
    no_reply = parse_record(json.dumps({"conversations": [{"value": "a", "from": "User"}]}), 3)
    assert isinstance(no_reply, Record) and no_reply.assistant_turns == ()


def test_labelled_line_sets_assistant_labels_only_and_escapes_ascii() -> None:
    parsed = parse_record(json.dumps(record(1)), 1)
    assert isinstance(parsed, Record)
    line = labelled_line(parsed, ["a:1", "b:2"])
    data = json.loads(line)
    assert line.endswith(b"\n") and b"\\u00e9" in line  # json.dumps default, like Aligner
    assert [t["label"] for t in data["conversations"]] == [None, "a:1", None, "b:2"]
    assert data["system"] == "kept" and data["type"] == "VALUE_TO_TEXT"
    assert parsed.data["conversations"][1]["label"] is None  # the input record is untouched


def test_recover_output_cuts_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert recover_output(out) == []
    good = [expected_line(record(i)) for i in range(3)]
    out.write_text("".join(good) + '{"conversations": [{"val', encoding="utf-8")
    assert recover_output(out) == [record_key(record(i)) for i in range(3)]
    assert out.read_text(encoding="utf-8") == "".join(good)
    out.write_text("".join(good) + "{torn but with a newline\n", encoding="utf-8")
    assert len(recover_output(out)) == 3 and out.read_text(encoding="utf-8") == "".join(good)
    out.write_text(good[0] + "garbage\n" + good[1], encoding="utf-8")
    with pytest.raises(AnnotationError, match=":2 is not an annotated record"):
        recover_output(out)


def test_output_is_in_input_order_and_equals_a_sequential_run(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = [record(i, turns=1 + i % 3) for i in range(60)]
    write_input(source, records)
    scorer = FakeScorer(seed=1)
    advanced: list[int] = []

    class Progress:
        def start(self, total: int) -> None:
            advanced.append(-total)

        def advance(self, count: int) -> None:
            advanced.append(count)

    summary = run(source, target, scorer, concurrency=8, progress=Progress())
    assert target.read_text(encoding="ascii") == "".join(expected_line(r) for r in records)
    assert summary.written == 60 and summary.resumed == 0 and summary.turns == sum(1 + i % 3 for i in range(60))
    assert advanced[0] == -60 and sum(advanced[1:]) == 60
    assert 1 < scorer.peak <= 8


def test_resume_skips_done_records_without_resending_them(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = [record(i) for i in range(30)]
    write_input(source, records)
    target.write_text("".join(expected_line(r) for r in records[:12]) + '{"torn', encoding="ascii")
    scorer = FakeScorer()
    summary = run(source, target, scorer, concurrency=4)
    assert summary.resumed == 12 and summary.written == 18
    assert target.read_text(encoding="ascii") == "".join(expected_line(r) for r in records)
    assert not any(f"answer {i}." in p for p in scorer.sent for i in range(12))
    again = FakeScorer()
    assert run(source, target, again).written == 0 and again.sent == []


def test_output_from_another_input_is_refused(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, [record(i) for i in range(3)])
    target.write_text(expected_line(record(99)), encoding="ascii")
    with pytest.raises(AnnotationError, match="another input"):
        run(source, target, FakeScorer())
    target.write_text("".join(expected_line(record(i)) for i in range(4)), encoding="ascii")
    with pytest.raises(AnnotationError, match="OUT has 4 records but IN only 3"):
        run(source, target, FakeScorer())


def test_malformed_lines_are_fatal_unless_skipped(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = [record(i) for i in range(5)]
    write_input(source, records, {2: "{bad", 4: "", 5: '{"conversations": "no"}'})
    reported: list[Malformed] = []
    scorer = FakeScorer()
    with pytest.raises(AnnotationError, match="2 malformed input line"):
        run(source, target, scorer, on_malformed=reported.append)
    assert [m.line for m in reported] == [3, 8] and scorer.sent == [] and not target.exists()
    summary = run(source, target, scorer, skip_malformed=True)
    assert [m.line for m in summary.malformed] == [3, 8]
    assert target.read_text(encoding="ascii") == "".join(expected_line(r) for r in records)


def test_a_failure_stops_the_run_and_keeps_a_valid_prefix(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = [record(i) for i in range(40)]
    write_input(source, records)
    with pytest.raises(InterruptedError):
        run(source, target, FakeScorer(fail_on="answer 20.1"), concurrency=4)
    written = target.read_text(encoding="ascii")
    lines = written.splitlines(keepends=True)
    assert len(lines) <= 20 and lines == [expected_line(r) for r in records[: len(lines)]]
    run(source, target, FakeScorer(), concurrency=4)
    assert target.read_text(encoding="ascii") == "".join(expected_line(r) for r in records)


def test_reorder_window_bounds_buffered_records(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source, [record(i) for i in range(40)])
    started: list[int] = []
    release = asyncio.Event()

    async def scorer(prompts: Sequence[str]) -> list[FakeLabel]:
        index = int(prompts[0].split("question ")[1].split(".")[0])
        started.append(index)
        if index == 0:
            await release.wait()  # the head of the line is slow
        return [FakeLabel("q:1") for _ in prompts]

    async def main() -> None:
        task = asyncio.create_task(annotate_file(source, target, scorer, concurrency=2))
        for _ in range(200):
            await asyncio.sleep(0.005)
        assert max(started) < 8  # 4 × concurrency records may wait behind record 0
        release.set()
        await task

    asyncio.run(main())
    assert len(target.read_text(encoding="ascii").splitlines()) == 40


def test_lines_that_are_not_text_or_too_deep_are_malformed_not_crashes(tmp_path: Path) -> None:
    surrogate = json.dumps(record(2)).replace("answer 2.0", "answer \\udc80 2.0")
    parsed = parse_record(surrogate, 9)
    assert isinstance(parsed, Malformed) and "turn 1 holds a lone surrogate (\\udc80 at character 7)" in parsed.reason
    deep = parse_record("[" * 100_000 + "]" * 100_000, 4)
    assert isinstance(deep, Malformed) and deep.reason == "JSON nested too deeply"
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + json.dumps(record(0)).encode() + b"\n\xc3(\n" + json.dumps(record(1)).encode())
    items = list(scan_input(source))
    assert isinstance(items[0], Record) and isinstance(items[2], Record)  # a BOM on line 1 is fine
    assert items[1] == Malformed(2, "not valid UTF-8 (byte 0xc3 at byte 1)")


def test_an_unannotated_copy_of_the_input_does_not_count_as_done(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records = [record(i) for i in range(3)]
    write_input(source, records)
    target.write_text(expected_line(records[0]) + json.dumps(records[1]) + "\n", encoding="ascii")
    scorer = FakeScorer()
    with pytest.raises(AnnotationError, match=":2 has assistant turns without labels"):
        run(source, target, scorer)
    assert scorer.sent == []
    with pytest.raises(AnnotationError, match="IN and OUT are the same file"):
        run(source, source, scorer)
    no_reply = {"conversations": [{"value": "only a question", "from": "User"}], "mask": "User"}
    write_input(source, [no_reply])
    target.write_text(json.dumps(no_reply) + "\n", encoding="ascii")  # nothing to label: it is done
    assert run(source, target, scorer).resumed == 1
