"""The embedded tiny model: deterministic build, atomic cached install, a tokenizer that knows the markers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch  # noqa: F401  (a missing install must fail, not skip)
import transformers  # noqa: F401

from steerlm.serve import tiny_model
from steerlm.serve.tiny_model import (
    MANIFEST,
    MARKERS,
    build_tiny_model,
    ensure_tiny_model,
    recipe_hash,
)


def manifest(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(tmp_path_factory.getbasetemp() / "steerlm-cache")


def test_build_is_deterministic(tmp_path: Path, cached: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    assert manifest(again) == manifest(cached)
    assert (again / "model.safetensors").read_bytes() == (cached / "model.safetensors").read_bytes()
    assert manifest(cached)["recipe"] == recipe_hash()


def test_ensure_builds_once_into_a_hashed_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = ensure_tiny_model(tmp_path)
    assert built == tmp_path / f"tiny-llama-{recipe_hash()}"
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no staging directory left behind

    def fail(target: object) -> Path:
        raise AssertionError("rebuilt a cached model")

    monkeypatch.setattr(tiny_model, "build_tiny_model", fail)
    assert ensure_tiny_model(tmp_path) == built


def test_default_cache_root_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEERLM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tiny_model.cache_root() == tmp_path / "xdg" / "steerlm"
    monkeypatch.setenv("STEERLM_CACHE_DIR", str(tmp_path / "explicit"))
    assert tiny_model.cache_root() == tmp_path / "explicit"


def test_a_concurrent_builder_that_finished_first_wins(
    tmp_path: Path, cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = tiny_model.build_tiny_model

    def racing(target: Path) -> Path:
        shutil.copytree(cached, tmp_path / cached.name)  # the other builder renamed its copy first
        return real_build(target)

    monkeypatch.setattr(tiny_model, "build_tiny_model", racing)
    assert ensure_tiny_model(tmp_path) == tmp_path / cached.name
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]


def test_tokenizer_knows_the_markers_and_ends_turns(cached: Path) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(cached, local_files_only=True)
    prompt = "<extra_id_0>System\n\n<extra_id_1>User\nHi\n<extra_id_1>Assistant\n<extra_id_2>quality:4\n"
    ids = tokenizer.encode(prompt)
    assert ids[0] == tokenizer.bos_token_id
    for marker in MARKERS:
        assert tokenizer.encode(marker, add_special_tokens=False) == [tokenizer.convert_tokens_to_ids(marker)]
        assert marker in tokenizer.all_special_tokens
    assert tokenizer.decode(ids[1:]) == prompt
    end_of_turn = tokenizer.convert_tokens_to_ids("<extra_id_1>")
    assert end_of_turn in GenerationConfig.from_pretrained(cached).eos_token_id
