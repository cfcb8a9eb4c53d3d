"""Golden prompts: each profile's single- and multi-turn strings, written out literally from the cards."""

from __future__ import annotations

import pytest

from steerlm import Message, PromptError, format_prompt

SYS = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
HS_DEFAULT = (
    "quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4,verbosity:4"
)
ONE = [{"role": "user", "content": "Write a poem on NVIDIA in the style of Shakespeare"}]
TWO = [
    {"role": "user", "content": "{prompt 1}"},
    {"role": "assistant", "content": "{response 1}"},
    {"role": "user", "content": "{prompt 2}"},
]


def test_000_llama2_70b_steerlm_single_turn_matches_card() -> None:
    # seeds/000 PROMPT_TEMPLATE: no blank line after the system text.
    expected = (
        "<extra_id_0>System\n"
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions.\n"
        "<extra_id_1>User\n"
        "Write a poem on NVIDIA in the style of Shakespeare\n"
        "<extra_id_1>Assistant\n"
        "<extra_id_2>quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,"
        "complexity:4,verbosity:4\n"
    )
    assert format_prompt(ONE, profile="Llama2-70B-SteerLM-Chat") == expected


def test_000_llama2_70b_steerlm_multi_turn_matches_card() -> None:
    expected = (
        "<extra_id_0>System\n" + SYS + "\n"
        "<extra_id_1>User\n{prompt 1}\n"
        "<extra_id_1>Assistant\n<extra_id_2>" + HS_DEFAULT + "\n{response 1}\n"
        "<extra_id_1>User\n{prompt 2}\n"
        "<extra_id_1>Assistant\n<extra_id_2>" + HS_DEFAULT + "\n"
    )
    assert format_prompt(TWO, profile="llama2-70b-steerlm-chat") == expected


def test_001_steerlm_13b_single_turn_has_blank_line_after_system() -> None:
    expected = (
        "<extra_id_0>System\n"
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions.\n"
        "\n"
        "<extra_id_1>User\n"
        "Where and when did techno music originate?\n"
        "<extra_id_1>Assistant\n"
        "<extra_id_2>quality:9,toxicity:0,humor:0,creativity:0,violence:0,helpfulness:9,not_appropriate:0\n"
    )
    messages = [{"role": "user", "content": "Where and when did techno music originate?"}]
    assert format_prompt(messages, profile="SteerLM-Llama2-13B") == expected


def test_001_steerlm_13b_multi_turn() -> None:
    labels = "quality:9,toxicity:0,humor:0,creativity:0,violence:0,helpfulness:9,not_appropriate:0"
    expected = (
        "<extra_id_0>System\n" + SYS + "\n\n"
        "<extra_id_1>User\n{prompt 1}\n"
        "<extra_id_1>Assistant\n<extra_id_2>" + labels + "\n{response 1}\n"
        "<extra_id_1>User\n{prompt 2}\n"
        "<extra_id_1>Assistant\n<extra_id_2>" + labels + "\n"
    )
    assert format_prompt(TWO, profile="SteerLM-Llama2-13B") == expected


@pytest.mark.parametrize("profile", ["NV-Llama2-70B-RLHF-Chat", "Llama3-70B-PPO-Chat"])
def test_002_003_nemo_chat_single_turn_has_empty_system(profile: str) -> None:
    expected = (
        "<extra_id_0>System\n"
        "\n"
        "<extra_id_1>User\n"
        "Write a poem on NVIDIA in the style of Shakespeare\n"
        "<extra_id_1>Assistant\n"
    )
    assert format_prompt(ONE, profile=profile) == expected


@pytest.mark.parametrize("profile", ["NV-Llama2-70B-RLHF-Chat", "Llama3-70B-PPO-Chat"])
def test_002_003_nemo_chat_multi_turn(profile: str) -> None:
    expected = (
        "<extra_id_0>System\n\n"
        "<extra_id_1>User\n{prompt 1}\n"
        "<extra_id_1>Assistant\n{response 1}\n"
        "<extra_id_1>User\n{prompt 2}\n"
        "<extra_id_1>Assistant\n"
    )
    assert format_prompt(TWO, profile=profile) == expected


def test_002_closed_qa_with_context_matches_card() -> None:
    context = (
        "Climate change refers to long-term shifts in temperatures and weather patterns. Such shifts can be "
        "natural, due to changes in the sun’s activity or large volcanic eruptions. But since the 1800s, human "
        "activities have been the main driver of climate change, primarily due to the burning of fossil fuels "
        "like coal, oil and gas."
    )
    question = "What is the main driver of climate change?"
    expected = (
        "<extra_id_0>System\n"
        "\n"
        "<extra_id_1>User\n"
        "This is a chat between a user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions based on the context. The assistant should also "
        "indicate when the answer cannot be found in the context.\n"
        "Context: " + context + "\n"
        "Please give a full and complete answer for the question. What is the main driver of climate change?\n"
        "<extra_id_1>Assistant\n"
    )
    messages = [{"role": "user", "content": question}]
    assert format_prompt(messages, profile="NV-Llama2-70B-RLHF-Chat", context=context) == expected


def test_closed_qa_in_a_steerlm_profile_goes_in_the_last_user_turn() -> None:
    prompt = format_prompt(TWO, profile="Llama2-70B-SteerLM-Chat", context="C1", attributes={"verbosity": 1})
    assert "<extra_id_1>User\n{prompt 1}\n" in prompt  # earlier turn untouched
    assert prompt.endswith(
        "<extra_id_1>User\nThis is a chat between a user and an artificial intelligence assistant. The "
        "assistant gives helpful, detailed, and polite answers to the user's questions based on the context. "
        "The assistant should also indicate when the answer cannot be found in the context.\nContext: C1\n"
        "Please give a full and complete answer for the question. {prompt 2}\n<extra_id_1>Assistant\n"
        "<extra_id_2>quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,"
        "complexity:4,verbosity:1\n"
    )


def test_llama3_70b_steerlm_single_and_multi_turn() -> None:
    labels = "helpfulness:4,correctness:4,coherence:4,complexity:2,verbosity:2"
    single = (
        "<extra_id_0>System\n" + SYS + "\n<extra_id_1>User\n{p}\n<extra_id_1>Assistant\n<extra_id_2>" + labels + "\n"
    )
    assert format_prompt([{"role": "user", "content": "{p}"}], profile="Llama3-70B-SteerLM-Chat") == single
    multi = (
        "<extra_id_0>System\n" + SYS + "\n"
        "<extra_id_1>User\n{prompt 1}\n<extra_id_1>Assistant\n<extra_id_2>" + labels + "\n{response 1}\n"
        "<extra_id_1>User\n{prompt 2}\n<extra_id_1>Assistant\n<extra_id_2>" + labels + "\n"
    )
    assert format_prompt(TWO, profile="Llama3-70B-SteerLM-Chat") == multi


def test_reward_model_annotation_prompt_single_and_multi_turn() -> None:
    single = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    assert format_prompt(single, profile="Llama2-13B-SteerLM-RM") == (
        "<extra_id_0>System\n" + SYS + "\n<extra_id_1>User\nq1\n<extra_id_1>Assistant\na1\n<extra_id_2>"
    )
    multi = [*single, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    assert format_prompt(multi, profile="Llama2-13B-SteerLM-RM") == (
        "<extra_id_0>System\n" + SYS + "\n<extra_id_1>User\nq1\n<extra_id_1>Assistant\na1\n"
        "<extra_id_1>User\nq2\n<extra_id_1>Assistant\na2\n<extra_id_2>"
    )


def test_history_assistant_turn_keeps_its_own_labels() -> None:
    messages = [
        Message("user", "q1"),
        Message("assistant", "a1", attributes={"verbosity": 0, "creativity": 3}),
        Message("user", "q2"),
    ]
    prompt = format_prompt(messages, profile="Llama2-70B-SteerLM-Chat", attributes={"verbosity": 2})
    assert (
        "<extra_id_1>Assistant\n<extra_id_2>quality:4,toxicity:0,humor:0,creativity:3,helpfulness:4,"
        "correctness:4,coherence:4,complexity:4,verbosity:0\na1\n" in prompt
    )
    assert prompt.endswith("creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4,verbosity:2\n")


def test_system_messages_replace_default_and_join() -> None:
    messages = [
        {"role": "system", "content": "S1"},
        {"role": "user", "content": "u"},
        {"role": "system", "content": "S2"},
    ]
    prompt = format_prompt(messages, profile="NV-Llama2-70B-RLHF-Chat")
    assert prompt == "<extra_id_0>System\nS1\n\nS2\n<extra_id_1>User\nu\n<extra_id_1>Assistant\n"


def test_consecutive_same_role_messages_merge_with_blank_line() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "human", "content": "e"},
    ]
    prompt = format_prompt(messages, profile="Llama3-70B-PPO-Chat")
    assert prompt == (
        "<extra_id_0>System\n\n<extra_id_1>User\na\n\nb\n<extra_id_1>Assistant\nc\n\nd\n"
        "<extra_id_1>User\ne\n<extra_id_1>Assistant\n"
    )


def test_tool_messages_render_as_user_turns() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "content": "sunny", "name": "get_weather", "tool_call_id": "c1"},
    ]
    prompt = format_prompt(messages, profile="Llama3-70B-PPO-Chat")
    assert prompt.endswith(
        "<extra_id_1>User\nweather?\n\nTool result (get_weather, call c1):\nsunny\n<extra_id_1>Assistant\n"
    )


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "empty"),
        ([{"role": "system", "content": "s"}], "empty"),
        ([{"role": "assistant", "content": "a"}], "no user message"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "last message"),
        ([{"role": "robot", "content": "q"}], "unknown role"),
        ([{"role": "user", "content": 3}], "must be a string"),
    ],
)
def test_unrenderable_conversations_raise_prompt_error(messages: list[dict[str, object]], fragment: str) -> None:
    with pytest.raises(PromptError, match=fragment):
        format_prompt(messages, profile="Llama2-70B-SteerLM-Chat")  # type: ignore[arg-type]


def test_reward_conversation_must_end_with_assistant() -> None:
    with pytest.raises(PromptError, match="end with the assistant"):
        format_prompt([{"role": "user", "content": "q"}], profile="Llama2-13B-SteerLM-RM")


def test_message_text_is_the_same_message_as_the_constructor() -> None:
    from steerlm.prompts import Message

    for args in (("user", "hi"), ("assistant", "ok", {"verbosity": 1}), ("system", "")):
        fast, slow = Message.text(*args), Message(*args)
        assert fast == slow and repr(fast) == repr(slow)
        assert (fast.tool_calls, fast.name, fast.tool_call_id) == ((), None, None)
