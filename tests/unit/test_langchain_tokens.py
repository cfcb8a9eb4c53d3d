"""steerlm.tokens: local tokenizer loading, counting and the context-window guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import ByteLevelBPETokenizer, Tokenizer

from steerlm.errors import ConfigurationError, ContextWindowExceededError
from steerlm.profiles import get_profile
from steerlm.tokens import TokenCounter, check_context_window, guard_prompt, load_token_counter


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator(["hello world, the quick brown fox"] * 10, vocab_size=300, min_frequency=1,
                                show_progress=False)
    folder = tmp_path_factory.mktemp("tok")
    trained.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


def test_load_file_and_directory_count_the_same(tokenizer_file: Path) -> None:
    by_file = load_token_counter(tokenizer_file)
    by_dir = load_token_counter(str(tokenizer_file.parent))
    expected = len(Tokenizer.from_file(str(tokenizer_file)).encode("hello world").ids)
    assert by_file.count("hello world") == by_dir.count("hello world") == expected
    assert by_file.count("") == 0
    assert by_file.ids("hello") == Tokenizer.from_file(str(tokenizer_file)).encode("hello").ids


def test_paths_are_loaded_once(tokenizer_file: Path) -> None:
    assert load_token_counter(tokenizer_file) is load_token_counter(str(tokenizer_file))


def test_tokenizer_objects_and_counters_are_accepted(tokenizer_file: Path) -> None:
    raw = Tokenizer.from_file(str(tokenizer_file))
    assert load_token_counter(raw).count("fox") == len(raw.encode("fox").ids)
    counter = TokenCounter(raw)
    assert load_token_counter(counter) is counter

    class ListTokenizer:  # the transformers shape: encode() returns a list of ids
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [0] * (len(text.split()) + int(add_special_tokens))

    assert load_token_counter(ListTokenizer()).count("a b c", add_special_tokens=True) == 4


@pytest.mark.parametrize("source", ["/does/not/exist/tokenizer.json", 42])
def test_bad_sources_raise_configuration_error(source: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_token_counter(source)


def test_directory_without_tokenizer_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_transformers(name: str, *args: object, **kwargs: object) -> object:
        if name == "transformers":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(ConfigurationError, match=r"no tokenizer\.json"):
        load_token_counter(tmp_path)


def test_context_window_guard() -> None:
    profile = get_profile("Llama2-70B-SteerLM-Chat")
    check_context_window(4000, 96, profile)
    check_context_window(4095, None, 4096)
    with pytest.raises(ContextWindowExceededError) as info:
        check_context_window(4000, 97, profile)
    assert (info.value.prompt_tokens, info.value.limit) == (4000, 4096)
    assert "4097" in str(info.value) and "Llama2-70B-SteerLM-Chat" in str(info.value)
    with pytest.raises(ContextWindowExceededError):
        check_context_window(4096, None, 4096)


def test_guard_prompt_counts_with_special_tokens(tokenizer_file: Path) -> None:
    counter = load_token_counter(tokenizer_file)
    profile = get_profile("Llama2-70B-SteerLM-Chat")
    assert guard_prompt(counter, "hello world", 10, profile) == counter.count("hello world", add_special_tokens=True)
    with pytest.raises(ContextWindowExceededError):
        guard_prompt(counter, "hello world", 4096, profile)


def test_chat_model_tokenizer_gives_token_ids(tokenizer_file: Path) -> None:
    from langchain_steerlm import ChatSteerLM

    model = ChatSteerLM(tokenizer=tokenizer_file)
    assert model.get_num_tokens("hello world") == load_token_counter(tokenizer_file).count("hello world")
    assert model.get_token_ids("hello") == Tokenizer.from_file(str(tokenizer_file)).encode("hello").ids
