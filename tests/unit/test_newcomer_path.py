"""The newcomer's path: the hashing stand-in embedding retrieves by shared words; `steerlm serve` without
the server extra names the extra to install; the extras cover the documented flows."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from steerlm.cli import build_parser
from steerlm.serve import command
from steerlm_testing.embeddings import DIMENSIONS, embed, words

ROOT = Path(__file__).resolve().parents[2]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embedding_is_deterministic_unit_length_and_word_based() -> None:
    vector = embed("SteerLM conditions answers on attribute labels")
    assert len(vector) == DIMENSIONS and vector == embed("steerlm CONDITIONS answer on attribute labels!")
    assert abs(_cosine(vector, vector) - 1.0) < 1e-9
    assert embed("the and of") == [0.0] * DIMENSIONS
    assert words("The rivers of Paris") == ["river", "pari"]


def test_embedding_ranks_the_document_sharing_the_question_words_first() -> None:
    texts = ["SteerLM conditions each answer on attribute labels such as helpfulness and verbosity.",
             "Triton Inference Server serves models over HTTP and gRPC.",
             "The Eiffel Tower is in Paris and was finished in 1889."]
    for question, expected in [("What does SteerLM condition answers on?", 0),
                               ("Which protocols does Triton serve models over?", 1),
                               ("When was the Eiffel Tower finished?", 2)]:
        query = embed(question)
        ranked = sorted(range(len(texts)), key=lambda i: -_cosine(query, embed(texts[i])))
        assert ranked[0] == expected, (question, ranked)


def test_langchain_and_llamaindex_wrappers_return_the_same_vectors() -> None:
    from steerlm_testing.langchain_embeddings import HashingEmbeddings
    from steerlm_testing.llamaindex_embeddings import HashingEmbedding

    assert HashingEmbeddings().embed_documents(["GPU servers"]) == [embed("GPU servers")]
    assert HashingEmbeddings().embed_query("GPU servers") == embed("GPU servers")
    assert HashingEmbedding().get_text_embedding("GPU servers") == embed("GPU servers")
    assert HashingEmbedding().get_query_embedding("GPU servers") == embed("GPU servers")


def test_serve_without_the_server_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pytriton", None)  # `import pytriton` now raises ModuleNotFoundError
    args = build_parser().parse_args(["serve", "--preset", "demo"])
    assert command.run(args) == 2
    message = capsys.readouterr().err
    assert "'server' extra" in message and 'pip install "steerlm[server]"' in message
    assert "pytriton is not installed" in message and "Traceback" not in message


def test_missing_hf_packages_name_the_hf_extra_and_others_are_not_hidden() -> None:
    torch_message = command.missing_extra_message(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert torch_message is not None and "steerlm[hf]" in torch_message
    assert command.missing_extra_message(ModuleNotFoundError("x", name="numpy_typo")) is None


def test_extras_cover_the_documented_flows() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {extra: {spec.split(">")[0].split("=")[0].split("<")[0].split("[")[0] for spec in specs}
             for extra, specs in extras.items()}
    assert {"langchain-core", "langchain"} <= names["langchain"]  # ChatSteerLM + create_agent
    assert "llama-index-core" in names["llamaindex"]  # SteerLM, query engines, FunctionAgent
    assert "nvidia-pytriton" in names["server"]
