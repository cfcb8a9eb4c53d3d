"""Runs the bad-input table (tests/unit/bad_inputs.py) and checks docs/bad-input.md shows exactly that table.

Each case must raise the named `SteerLMError` subclass (or, for the command line, exit with status 2 and
no traceback) with a message containing the words that say what to fix — and no secret.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from bad_inputs import CASES, DOC, END, SETUP, START, Case, render_table

import steerlm.errors
from steerlm.cli import main as cli_main

RECORD = {"system": "", "mask": "User", "conversations": [{"from": "User", "value": "hi"},
                                                          {"from": "Assistant", "value": "hello"}]}


class CliExit(Exception):
    """The ``steerlm`` command exited with a non-zero status; the message is its stderr."""

    def __init__(self, code: object, stderr: str) -> None:
        super().__init__(stderr)
        self.code = code


def cli(*args: str) -> int:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code: object = cli_main(list(args))
        except SystemExit as exc:
            code = exc.code
    if code:
        raise CliExit(code, err.getvalue())
    return 0


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bad-inputs")
    (folder / "in.jsonl").write_text(json.dumps(RECORD) + "\n")
    (folder / "bad.jsonl").write_text(json.dumps(RECORD) + "\n{not json\n")
    (folder / "foreign.jsonl").write_text('{"something": "else"}\n')
    (folder / "copy.jsonl").write_text(json.dumps(RECORD) + "\n")  # IN itself, no labels
    (folder / "latin1.jsonl").write_bytes(json.dumps(RECORD).replace("hello", "h\u00e9llo").encode("latin-1") + b"\n")
    (folder / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    (folder / "surrogate.jsonl").write_text(json.dumps(RECORD).replace("hello", "he\\ud800llo") + "\n")
    (folder / "noconv.jsonl").write_text('{"system": ""}\n')
    (folder / "array.jsonl").write_text("[1, 2]\n")
    robot = {**RECORD, "conversations": [{"from": "Robot", "value": "x"}]}
    (folder / "robot.jsonl").write_text(json.dumps(robot) + "\n")
    names: dict[str, Any] = {"__name__": "bad_inputs_namespace"}
    exec(SETUP, names)
    names["cli"] = cli
    names["folder"] = folder
    return names


@pytest.fixture
def in_folder(namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(namespace["folder"])
    yield namespace


def test_the_table_has_170_cases_or_more_across_every_area() -> None:
    assert len(CASES) >= 170
    assert {c.area for c in CASES} >= {"core", "client config", "LangChain ChatSteerLM", "LangChain SteerLM",
                                       "LlamaIndex SteerLM", "reward model", "annotate"}
    assert len({c.code for c in CASES}) == len(CASES), "a case is listed twice"


@pytest.mark.parametrize("case", CASES, ids=[f"{n}-{c.area}" for n, c in enumerate(CASES, 1)])
def test_bad_input(case: Case, in_folder: dict[str, Any]) -> None:
    if case.error.startswith("exit"):
        with pytest.raises(CliExit) as exited:
            exec(case.code, in_folder)
        message = str(exited.value)
        assert exited.value.code == int(case.error.split()[1]), message
        assert "Traceback" not in message
    else:
        with pytest.raises(steerlm.errors.SteerLMError) as raised:
            exec(case.code, in_folder)
        assert raised.type.__name__ == case.error or case.error in [c.__name__ for c in raised.type.__mro__], (
            f"{raised.type.__name__}: {raised.value}")
        message = str(raised.value)
    assert case.says.lower() in message.lower(), message
    assert "SECRET" not in message


def test_the_docs_page_shows_this_table() -> None:
    text = DOC.read_text()
    assert START in text and END in text
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == render_table(), "docs/bad-input.md is stale: run `python tests/unit/bad_inputs.py --write`"
