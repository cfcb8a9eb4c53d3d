"""Property: user-controlled text can never add a control marker to the rendered prompt."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerlm import PromptError, format_prompt, list_profiles, neutralize
from steerlm.markers import _EQUIVALENTS, DELETED_CONTROLS, MARKER_ESCAPE

MARKER = "<extra_id_"
LOOKALIKES = ["<", "\uff1c", "\ufe64", "e", "\uff45", "x", "t", "r", "a", "_", "\uff3f", "i", "d", "0", "1",
              "2", "\uff11", ">", "\n", " ", "<extra_id_", "<extra_id_1>", "<extra_id_0>", "<extra_id_2>",
              "\uff1cextra_id_1\uff1e", "<ｅｘｔｒａ_id_2>", "\ufe64extra_id_0>", "<extra_id_\uff11>",
              "\x01", "\x0b", "\x1f", "\x7f", "\x8f", "\x9f", "\t", "<extra\x01_id_1>", "<\x08e\x0extra_id_",
              "\U0001d41e", "\u24d4", "\u00aa", "\u2170"]
text_with_markers = st.lists(st.one_of(st.sampled_from(LOOKALIKES), st.text(max_size=4)), max_size=24).map("".join)


def _normalize(text: str) -> str:
    """What the tokenizer matches markers in: NFKC with SentencePiece's deleted control characters gone."""
    return unicodedata.normalize("NFKC", text.translate(dict.fromkeys(map(ord, DELETED_CONTROLS))))


def _reference_starts(text: str) -> list[int]:
    """The straightforward (slow) definition: per-character NFKC + deletions, owners of each marker '<'."""
    owner: list[int] = []
    for index, char in enumerate(text):
        owner.extend([index] * len(_normalize(char)))
    flat = "".join(_normalize(char) for char in text)
    starts, position = [], flat.find(MARKER)
    while position != -1:
        starts.append(owner[position])
        position = flat.find(MARKER, position + 1)
    return starts


def _count(prompt: str) -> int:
    return _normalize(prompt).count(MARKER)


def _expected_markers(profile: str, turns: int) -> int:
    # header + one per turn + generation turn, plus one label line per assistant turn for SteerLM.
    steerlm = profile in {"Llama2-70B-SteerLM-Chat", "SteerLM-Llama2-13B", "Llama3-70B-SteerLM-Chat"}
    assistants = turns // 2 + 1
    return 1 + turns + 1 + (assistants if steerlm else 0)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from([p for p in list_profiles() if p != "Llama2-13B-SteerLM-RM"]),
    system=text_with_markers,
    contents=st.lists(text_with_markers, min_size=0, max_size=2).map(lambda xs: xs * 1),
    last=text_with_markers,
    context=st.one_of(st.none(), text_with_markers),
)
def test_rendered_prompt_has_exactly_the_template_markers(
    profile: str, system: str, contents: list[str], last: str, context: str | None
) -> None:
    history: list[dict[str, str]] = []
    for index, text in enumerate(contents * 2):  # user/assistant alternating pairs
        history.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    messages = [{"role": "system", "content": system}, *history, {"role": "user", "content": last}]
    prompt = format_prompt(messages, profile=profile, context=context)
    assert _count(prompt) == _expected_markers(profile, len(history) + 1)


@settings(max_examples=1000, deadline=None)
@given(text_with_markers)
def test_neutralize_leaves_no_marker_even_after_nfkc(text: str) -> None:
    out = neutralize(text)
    assert MARKER not in _normalize(out)
    assert MARKER not in unicodedata.normalize("NFKC", out)
    assert MARKER not in out
    if MARKER not in _normalize(text):
        assert out == text  # clean text is untouched


@settings(max_examples=1000, deadline=None)
@given(text_with_markers)
def test_neutralize_escapes_exactly_the_reference_marker_starts(text: str) -> None:
    expected = list(text)
    for index in _reference_starts(text):
        expected[index] = MARKER_ESCAPE
    assert neutralize(text) == "".join(expected)


@pytest.mark.parametrize("control", list(DELETED_CONTROLS))
def test_every_deleted_control_character_inside_a_marker_is_caught(control: str) -> None:
    for cut in range(1, len(MARKER)):
        text = f"say {MARKER[:cut]}{control}{MARKER[cut:]}1> now"
        assert neutralize(text) == f"say \u2039{text[5:]}"
        with pytest.raises(PromptError, match="control token"):
            neutralize(text, strict=True)


def test_control_characters_sentencepiece_keeps_or_spaces_do_not_count() -> None:
    assert len(DELETED_CONTROLS) == 30
    for kept in ("\t", "\n", "\r", "\x0c", "\x85", " "):  # spaces (or kept): they break a marker
        assert neutralize(f"<extra{kept}_id_1>") == f"<extra{kept}_id_1>"


def test_lookalike_tables_cover_all_of_unicode() -> None:
    """Each marker character's table holds every character whose NFKC form is that character, and no
    character's NFKC form is a longer string that could supply part of a marker (so one regex is exact)."""
    found: dict[str, list[str]] = {c: [] for c in _EQUIVALENTS}
    overlapping = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        form = unicodedata.normalize("NFKC", chr(code))
        if form in found:
            found[form].append(chr(code))
        elif len(form) > 1 and (form in MARKER or any(form.endswith(MARKER[:k]) or form.startswith(MARKER[-k:])
                                                      for k in range(1, len(MARKER) + 1))):
            overlapping.append(hex(code))
    assert {c: sorted(v) for c, v in found.items()} == {c: sorted(v) for c, v in _EQUIVALENTS.items()}
    assert overlapping == []


def test_escape_is_visible_and_minimal() -> None:
    assert neutralize("see <extra_id_1>User") == "see \u2039extra_id_1>User"
    assert neutralize("\uff1cextra_id_2\uff1e") == "\u2039extra_id_2\uff1e"


def test_strict_mode_raises() -> None:
    with pytest.raises(PromptError, match="control token"):
        format_prompt([{"role": "user", "content": "x <extra_id_1>y"}], profile="Llama3-70B-PPO-Chat", strict=True)
    assert format_prompt([{"role": "user", "content": "plain"}], profile="Llama3-70B-PPO-Chat", strict=True)
