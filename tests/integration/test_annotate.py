"""`steerlm annotate` as a real subprocess against the local reward-model server: the labels, malformed
lines, the progress bar, and the kill-and-resume guarantee (SIGKILL mid-run, then resume: the exact
line set, no duplicates, and no finished line sent again — checked in the server's request log)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steerlm.attributes import HELPSTEER
from steerlm.reward import annotation_prompts, to_scores
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(240)]


def record(i: int, sleep: float = 0.0) -> dict[str, Any]:
    pause = f" [[sleep={sleep}]]" if sleep else ""
    return {"conversations": [
        {"value": f"Question number {i}?", "from": "User", "label": None},
        {"value": f"Answer number {i} is{' long' * (i % 7)}.{pause}", "from": "Assistant", "label": None},
        {"value": "Thanks!", "from": "User", "label": None},
        {"value": "You are welcome " * (i % 5) + f"(record {i})", "from": "Assistant", "label": None},
    ], "mask": "User", "system": "", "type": "VALUE_TO_TEXT"}


def expected_line(data: dict[str, Any]) -> str:
    """What Aligner's rules give with the scripted scorer (computed locally, no server)."""
    from steerlm_testing.reward_scorer import reply_of, scripted_rewards

    out = json.loads(json.dumps(data))
    messages = [{"role": "user" if t["from"] == "User" else "assistant", "content": t["value"]}
                for t in data["conversations"]]
    for index, prompt in annotation_prompts(messages):
        raw = [float(np.float32(v)) for v in scripted_rewards(reply_of(prompt))]
        out["conversations"][index]["label"] = to_scores(raw, HELPSTEER).label
    return json.dumps(out) + "\n"


def command(server: LocalServer, source: Path, target: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "steerlm.cli", "annotate", str(source), str(target), "--url", server.http_url,
            *extra]


@pytest.fixture
def server(reward_server: LocalServer) -> LocalServer:
    return reward_server


def test_annotates_with_aligner_labels_and_a_progress_bar(server: LocalServer, tmp_path: Path) -> None:
    records = [record(i) for i in range(12)]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    done = subprocess.run(command(server, source, target, "--concurrency", "4"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="ascii") == "".join(expected_line(r) for r in records)
    assert re.search(r"annotate: 100%\|.*12/12 \[[0-9:]+<[0-9:]+, +[0-9.]+conv/s\]", done.stderr), done.stderr
    assert "annotated 12 record(s) (24 turn(s)); 0 were already done" in done.stderr
    label = json.loads(target.read_text(encoding="ascii").splitlines()[0])["conversations"][1]["label"]
    assert re.fullmatch(r"quality:\d,toxicity:\d,humor:\d,creativity:\d,helpfulness:\d,correctness:\d,"
                        r"coherence:\d,complexity:\d,verbosity:\d", label)


def test_malformed_lines_are_reported_and_fatal_or_skipped(server: LocalServer, tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps(record(0)), "{not json", json.dumps(record(1)), '{"conversations": 5}', json.dumps(record(2))]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fatal = subprocess.run(command(server, source, target, "--quiet"), capture_output=True, text=True, timeout=60)
    assert fatal.returncode == 2
    assert f"{source}:2: malformed: not JSON" in fatal.stderr and f"{source}:4: malformed:" in fatal.stderr
    assert not target.exists() and server.requests("reward_model") == []
    skipped = subprocess.run(command(server, source, target, "--quiet", "--skip-malformed"), capture_output=True,
                             text=True, timeout=60)
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 2 malformed line(s)" in skipped.stderr
    assert target.read_text(encoding="ascii") == "".join(expected_line(record(i)) for i in range(3))


def test_server_failure_exits_1_and_keeps_a_resumable_file(server: LocalServer, tmp_path: Path) -> None:
    records = [record(i) for i in range(6)]
    broken = record(3)
    broken["conversations"][1]["value"] = "[[rewards=1,2]]"
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in [*records[:3], broken, *records[4:]]), encoding="utf-8")
    done = subprocess.run(command(server, source, target, "--quiet", "--concurrency", "1"), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "2 value(s) per sentence" in done.stderr and "resume" in done.stderr
    assert target.read_text(encoding="ascii") == "".join(expected_line(r) for r in records[:3])


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").splitlines(keepends=True) if path.exists() else []


def _complete(path: Path) -> list[str]:
    return [line for line in _lines(path) if line.endswith("\n")]


def _record_ids(entries: list[dict[str, Any]]) -> set[int]:
    ids = set()
    for entry in entries:
        for sentence in entry["inputs"]["sentences"]["data"]:
            ids.update(int(m) for m in re.findall(r"Question number (\d+)\?", sentence))
    return ids


def test_kill_and_resume_loses_nothing_duplicates_nothing_resends_nothing(server: LocalServer,
                                                                          tmp_path: Path) -> None:
    total = 150
    records = [record(i, sleep=0.02) for i in range(total)]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    expected = [expected_line(r) for r in records]
    args = command(server, source, target, "--quiet", "--concurrency", "3")

    runs = 0
    while True:
        runs += 1
        before = _complete(target)
        server.clear_log()
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if runs <= 2:  # kill the first two runs mid-way, at different points
            goal = len(before) + 25 * runs
            deadline = time.monotonic() + 90
            while len(_complete(target)) < goal and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert process.poll() is None, "the run ended before it could be killed"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            if runs == 1:  # a crash in the middle of a write leaves a torn line
                with target.open("a", encoding="ascii") as handle:
                    handle.write(expected[len(_complete(target))][:37])
        else:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
        after = _complete(target)
        finished_before = {i for i in range(len(before)) if before[i] == expected[i]}
        assert len(finished_before) == len(before)
        assert after[: len(before)] == before  # nothing finished is rewritten or reordered
        assert not (_record_ids(server.requests("reward_model")) & finished_before), "finished lines were re-sent"
        if runs == 3:
            break
        assert 0 < len(after) < total
    assert _lines(target) == expected  # exact line set and order, no duplicates, no torn line


def _run(server: LocalServer, source: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(server, source, target, "--quiet", *extra), capture_output=True, text=True,
                          timeout=120)


def test_out_that_is_in_or_an_unannotated_copy_of_it_is_refused(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    original = "".join(json.dumps(record(i)) + "\n" for i in range(2))
    source.write_text(original, encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    for target in (source, link):
        same = _run(server, source, target)
        assert same.returncode == 2 and "IN and OUT are the same file" in same.stderr, same.stderr
        assert "Traceback" not in same.stderr
    copy = tmp_path / "copy.jsonl"
    copy.write_text(original, encoding="utf-8")
    refused = _run(server, source, copy)
    assert refused.returncode == 2 and f"{copy}:1 has assistant turns without labels" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert source.read_text(encoding="utf-8") == original and copy.read_text(encoding="utf-8") == original
    assert server.requests("reward_model") == []


def test_undecodable_deep_and_surrogate_lines_are_reported_by_line(server: LocalServer, tmp_path: Path) -> None:
    with_surrogate = json.dumps(record(2)).replace("Answer number 2", "Answer \\ud800 number 2")
    assert json.loads(with_surrogate)  # valid JSON whose text is not valid Unicode
    lines = [json.dumps(record(0)).encode(), b'{"conversations": "caf\xe9"}', json.dumps(record(1)).encode(),
             b"[" * 100_000 + b"]" * 100_000, with_surrogate.encode(), json.dumps(record(3)).encode()]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")

    fatal = _run(server, source, target)
    assert fatal.returncode == 2 and "Traceback" not in fatal.stderr, fatal.stderr
    assert f"{source}:2: malformed: not valid UTF-8 (byte 0xe9" in fatal.stderr
    assert f"{source}:4: malformed: JSON nested too deeply" in fatal.stderr
    assert f"{source}:5: malformed: turn 1 holds a lone surrogate (\\ud800" in fatal.stderr
    assert "3 malformed input line(s) (first: line 2)" in fatal.stderr
    assert not target.exists() and server.requests("reward_model") == []

    for run in range(2):  # the rerun passes the same records without crashing
        skipped = _run(server, source, target, "--skip-malformed")
        assert skipped.returncode == 0 and "Traceback" not in skipped.stderr, skipped.stderr
        assert "skipped 3 malformed line(s)" in skipped.stderr and f"{source}:5: malformed:" in skipped.stderr
        written, resumed = (3, 0) if run == 0 else (0, 3)
        assert f"annotated {written} record(s)" in skipped.stderr and f"{resumed} were already done" in skipped.stderr
        assert target.read_text(encoding="ascii") == "".join(expected_line(record(i)) for i in (0, 1, 3))
