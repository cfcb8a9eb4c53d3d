"""Attribute annotation of NeMo chat jsonl files with a SteerLM reward model (``steerlm annotate``).

Input lines are NeMo's conversation records ``{"conversations": [{"value", "from", "label"}, ...],
"mask": "User", ...}``; every turn whose ``from`` is not the ``mask`` is an assistant turn, is scored
with the conversation so far (`steerlm.reward.annotation_prompts`) and gets
``"label": "quality:4,toxicity:0,...,verbosity:2"``. Other fields are kept; lines are written as
``json.dumps(record) + "\\n"`` (ASCII-escaped, like NeMo-Aligner's ``attribute_annotate.py``).

Crash safety and resume: OUT is append-only and holds the annotated records **in input order** (a
reorder buffer lets requests finish out of order); each write is followed by ``fsync``. A run first
reads OUT back: a torn last line (no final newline, or not JSON) is cut off, and every complete line
must be the annotated form of the next valid input record (compared by the concatenated turn values,
NeMo-Aligner's resume key) — so those records are skipped, never re-sent, and a killed run resumed any
number of times yields exactly the output of one uninterrupted run. A line of OUT whose assistant turns
carry no labels (OUT is a copy of IN, say) is refused, as is OUT being IN itself. Blank input lines are
ignored; malformed ones (invalid UTF-8, bad or too deeply nested JSON, missing or mistyped fields, a lone
surrogate in a turn, a conversation that cannot be rendered) are reported with their line numbers before
anything is sent, then skipped (``--skip-malformed``) or fatal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from steerlm.annotate_writer import OrderedAppendWriter
from steerlm.errors import SteerLMError
from steerlm.prompts import Message
from steerlm.reward import annotation_prompts

__all__ = [
    "AnnotationError",
    "Malformed",
    "Progress",
    "Record",
    "Summary",
    "annotate_file",
    "is_annotated",
    "labelled_line",
    "parse_record",
    "record_key",
    "recover_output",
    "scan_input",
]


class AnnotationError(SteerLMError):
    """The files cannot be annotated as asked (malformed input, OUT not matching IN)."""


@dataclass(frozen=True)
class Malformed:
    line: int
    reason: str


@dataclass(frozen=True)
class Record:
    """One valid input line: its 1-based line number, the parsed object and the assistant turn indexes."""

    line: int
    data: dict[str, Any]
    messages: tuple[Message, ...]
    assistant_turns: tuple[int, ...]


_SURROGATE = re.compile("[\ud800-\udfff]")


def record_key(data: Mapping[str, Any]) -> str:
    """A digest of the concatenated turn values (NeMo-Aligner's resume key)."""
    joined = "".join(str(turn.get("value", "")) for turn in data.get("conversations", []))
    return hashlib.sha256(joined.encode("utf-8", errors="surrogatepass")).hexdigest()


def is_annotated(data: Mapping[str, Any]) -> bool:
    """Whether every assistant turn of the record carries a ``label`` string (an output line)."""
    turns, mask = data.get("conversations"), data.get("mask", "User")
    return isinstance(turns, list) and all(
        isinstance(turn, dict) and (turn.get("from") == mask or isinstance(turn.get("label"), str))
        for turn in turns)


def parse_record(text: str, line: int) -> Record | Malformed | None:
    """Parse and check one input line (None for a blank line)."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Malformed(line, f"not JSON ({exc})")
    except RecursionError:
        return Malformed(line, "JSON nested too deeply")
    if not isinstance(data, dict):
        return Malformed(line, "not a JSON object")
    turns, mask = data.get("conversations"), data.get("mask", "User")
    if not isinstance(turns, list) or not turns:
        return Malformed(line, "'conversations' must be a non-empty list")
    if not isinstance(mask, str):
        return Malformed(line, "'mask' must be a string")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or not isinstance(turn.get("from"),
                                                                                                  str):
            return Malformed(line, f"turn {index} needs string 'value' and 'from'")
        if bad := _SURROGATE.search(turn["value"]):
            return Malformed(line, f"turn {index} holds a lone surrogate (\\u{ord(bad.group()):04x} at character "
                                   f"{bad.start()}), which is not text: fix the producer of this line")
        messages.append(Message("user" if turn["from"] == mask else "assistant", turn["value"]))
    assistant = tuple(i for i, m in enumerate(messages) if m.role == "assistant")
    if assistant:
        try:
            annotation_prompts(messages)
        except SteerLMError as exc:
            return Malformed(line, f"cannot be rendered for the reward model: {exc}")
    return Record(line, data, tuple(messages), assistant)


def scan_input(path: Path) -> Iterator[Record | Malformed]:
    """Every non-blank line of `path`, parsed, in order (a UTF-8 BOM at the start is allowed)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield Malformed(number, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})")
                continue
            parsed = parse_record(text, number)
            if parsed is not None:
                yield parsed


def labelled_line(record: Record, labels: Sequence[str]) -> bytes:
    """The output line: the record with each assistant turn's label set, ``json.dumps`` + LF."""
    data = json.loads(json.dumps(record.data))
    for index, label in zip(record.assistant_turns, labels, strict=True):
        data["conversations"][index]["label"] = label
    return (json.dumps(data) + "\n").encode("ascii")


def recover_output(path: Path) -> list[str]:
    """The keys of the complete lines of OUT (cutting off a torn last line); [] when OUT is absent."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    keep = raw.rfind(b"\n") + 1
    lines = raw[:keep].split(b"\n")[:-1]
    keys = []
    for number, line in enumerate(lines, start=1):
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):
            if number != len(lines):
                raise AnnotationError(f"{path}:{number} is not an annotated record; refusing to append") from None
            keep -= len(line) + 1  # a torn line that happens to end with a newline
            continue
        if not is_annotated(data):
            raise AnnotationError(f"{path}:{number} has assistant turns without labels, so it is not an output of "
                                  "steerlm annotate (a copy of the input?): use a new OUT file")
        keys.append(record_key(data))
    if keep != len(raw):
        with path.open("r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
    return keys


@dataclass
class Summary:
    """What a run did: records found done in OUT, records written now, turns scored, malformed lines."""

    resumed: int = 0
    written: int = 0
    turns: int = 0
    malformed: list[Malformed] = field(default_factory=list)


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


Scorer = Callable[[Sequence[str]], Awaitable[Sequence[Any]]]  # prompts -> objects with a `.label`


def _check_input(source: Path) -> tuple[int, list[Malformed]]:
    count, malformed = 0, []
    for item in scan_input(source):
        if isinstance(item, Malformed):
            malformed.append(item)
        else:
            count += 1
    return count, malformed


def _pending(source: Path, done: Sequence[str]) -> Iterator[Record]:
    """The valid records after the `done` ones, checking that OUT matches IN."""
    seen = 0
    for item in scan_input(source):
        if isinstance(item, Malformed):
            continue
        if seen < len(done):
            if record_key(item.data) != done[seen]:
                raise AnnotationError(f"OUT line {seen + 1} is not the annotation of input line {item.line}: "
                                      "OUT was written from another input (use a new OUT file)")
            seen += 1
            continue
        yield item


def _may_start(writer: OrderedAppendWriter, sequence: int, window: int, tasks: Sequence[asyncio.Task[None]]) -> bool:
    """Room in the reorder window, or a failure to report."""
    return sequence < writer.next + window or any(t.done() and t.exception() is not None for t in tasks)


async def annotate_file(
    source: Path, target: Path, score: Scorer, *, concurrency: int = 8, skip_malformed: bool = False,
    on_malformed: Callable[[Malformed], None] | None = None, progress: Progress | None = None,
) -> Summary:
    """Annotate `source` into `target` (see the module docstring); `score` is async and gets the prompts
    of one record. At most `concurrency` records are in flight, and at most 4 × `concurrency` wait in the
    reorder buffer. The first scoring error stops the run (what was written stays valid) and is raised."""
    if target.exists() and os.path.samefile(source, target):
        raise AnnotationError(f"IN and OUT are the same file ({target}): write the annotations to a new file")
    total, malformed = _check_input(source)
    summary = Summary(malformed=malformed)
    for bad in malformed:
        if on_malformed is not None:
            on_malformed(bad)
    if malformed and not skip_malformed:
        raise AnnotationError(f"{len(malformed)} malformed input line(s) (first: line {malformed[0].line}); "
                              "fix them or pass --skip-malformed")
    done = recover_output(target)
    if len(done) > total:
        raise AnnotationError(f"OUT has {len(done)} records but IN only {total}: OUT comes from another input")
    summary.resumed = len(done)
    if progress is not None:
        progress.start(total - len(done))
    writer = OrderedAppendWriter(target)
    limit = max(1, concurrency)
    in_flight = asyncio.Semaphore(limit)
    written = asyncio.Condition()

    async def one(sequence: int, record: Record) -> None:
        try:
            prompts = [p for _, p in annotation_prompts(record.messages)]
            scores = await score(prompts) if prompts else []
            count = writer.put(sequence, labelled_line(record, [s.label for s in scores]))
            summary.turns += len(prompts)
            if count and progress is not None:
                progress.advance(count)
        finally:
            in_flight.release()
            async with written:
                written.notify_all()

    tasks: list[asyncio.Task[None]] = []
    try:
        for sequence, record in enumerate(_pending(source, done)):
            await in_flight.acquire()
            async with written:
                await written.wait_for(partial(_may_start, writer, sequence, 4 * limit, tasks))
            for task in [t for t in tasks if t.done()]:
                tasks.remove(task)
                task.result()  # re-raises the first failure
            tasks.append(asyncio.create_task(one(sequence, record)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        summary.written = writer.written
        writer.close()
    return summary
