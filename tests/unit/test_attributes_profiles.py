from __future__ import annotations

import pytest

from steerlm import (
    HELPSTEER,
    HELPSTEER2,
    OASST,
    ConfigurationError,
    encode_labels,
    format_prompt,
    get_profile,
    list_profiles,
    parse_labels,
)


def test_attribute_sets_match_the_cards() -> None:
    assert HELPSTEER.names == ("quality", "toxicity", "humor", "creativity", "helpfulness", "correctness",
                               "coherence", "complexity", "verbosity")
    assert (HELPSTEER.low, HELPSTEER.high) == (0, 4)
    assert OASST.names == ("quality", "toxicity", "humor", "creativity", "violence", "helpfulness",
                           "not_appropriate")
    assert (OASST.low, OASST.high) == (0, 9)
    assert HELPSTEER2.names == ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def test_profiles_listed_and_case_insensitive() -> None:
    assert list_profiles() == ["Llama2-70B-SteerLM-Chat", "SteerLM-Llama2-13B", "NV-Llama2-70B-RLHF-Chat",
                               "Llama3-70B-PPO-Chat", "Llama3-70B-SteerLM-Chat", "Llama2-13B-SteerLM-RM"]
    assert get_profile("LLAMA3-70B-PPO-CHAT").name == "Llama3-70B-PPO-Chat"
    for name in list_profiles():
        profile = get_profile(name)
        assert profile.context_window == 4096
        assert profile.server_kind in {"nemo_deploy", "nemo_rest", "reward_model"}


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="Llama2-70B-SteerLM-Chat") as info:
        get_profile("gpt-4")
    assert "gpt-4" in str(info.value)


@pytest.mark.parametrize(
    ("profile", "attrs", "fragment"),
    [
        ("Llama2-70B-SteerLM-Chat", {"verbosity": 5}, "verbosity=5.*0 to 4"),
        ("Llama2-70B-SteerLM-Chat", {"verbosity": -1}, "verbosity=-1"),
        ("Llama2-70B-SteerLM-Chat", {"verbosity": True}, "verbosity=True"),
        ("Llama2-70B-SteerLM-Chat", {"verbosity": 2.0}, "verbosity=2.0"),
        ("Llama2-70B-SteerLM-Chat", {"violence": 1}, "unknown steering attribute 'violence'.*verbosity"),
        ("SteerLM-Llama2-13B", {"verbosity": 1}, "unknown steering attribute 'verbosity'.*not_appropriate"),
        ("SteerLM-Llama2-13B", {"quality": 10}, "quality=10.*0 to 9"),
        ("Llama3-70B-SteerLM-Chat", {"humor": 1}, "unknown steering attribute 'humor'"),
        ("NV-Llama2-70B-RLHF-Chat", {"verbosity": 1}, "takes no steering attributes"),
    ],
)
def test_invalid_attributes_raise_configuration_error(profile: str, attrs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        format_prompt([{"role": "user", "content": "q"}], profile=profile, attributes=attrs)
    assert profile in str(info.value)
    assert isinstance(info.value, ValueError)


def test_oasst_values_up_to_nine_are_valid() -> None:
    prompt = format_prompt([{"role": "user", "content": "q"}], profile="SteerLM-Llama2-13B",
                           attributes={"quality": 9, "humor": 7})
    assert "<extra_id_2>quality:9,toxicity:0,humor:7," in prompt


def test_encode_then_parse_round_trip_in_card_order() -> None:
    values = {"verbosity": 2, "quality": 4, "toxicity": 0, "humor": 0, "creativity": 0, "helpfulness": 4,
              "correctness": 4, "coherence": 4, "complexity": 4}
    line = encode_labels(values, HELPSTEER)
    assert line == ("quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,"
                    "complexity:4,verbosity:2")
    assert parse_labels("<extra_id_2>" + line) == values


@pytest.mark.parametrize("bad", ["quality", "quality:x", "quality:1,quality:2", ":3"])
def test_parse_labels_rejects_malformed(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_labels(bad)


def test_encode_rejects_missing_attribute() -> None:
    with pytest.raises(ConfigurationError, match="lacks"):
        encode_labels({"quality": 4}, HELPSTEER2)
