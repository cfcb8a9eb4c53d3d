"""`steerlm.logprobs`: naming generated tokens from the text, trimming alternatives, and the parameters."""

from __future__ import annotations

import math

import pytest

from steerlm.errors import ConfigurationError
from steerlm.logprobs import TokenLogprob, align, trimmed
from steerlm.params import GenerationParams


def test_align_names_tokens_from_the_text() -> None:
    nan = math.nan
    entries = [TokenLogprob("", nan, (("He", -0.1), ("Hel", -0.2))),  # the longest match wins
               TokenLogprob("", -0.7, (("lo", -0.5), ("l", -0.7))),  # a reported value picks among matches
               TokenLogprob("x", -1.0),  # named by the server: kept
               TokenLogprob("", nan, (("?", -0.3),)),  # no match, one listed: that one
               TokenLogprob("", nan, (("a", -0.1), ("b", -0.2))),  # no match among several: unnamed
               TokenLogprob("", -2.5, (("z", -0.1),))]  # sampled outside the one listed: unnamed, value kept
    named = align(entries, "Hellox!")
    assert [(e.token, e.logprob) for e in named[:4]] == [("Hel", -0.2), ("l", -0.7), ("x", -1.0), ("?", -0.3)]
    assert named[4].token == "" and math.isnan(named[4].logprob)
    assert (named[5].token, named[5].logprob) == ("", -2.5)
    assert [e.top for e in named] == [e.top for e in entries]  # alternatives untouched


def test_trimmed_keeps_at_most_top_alternatives_and_bytes_are_utf8() -> None:
    entry = TokenLogprob("é", -0.1, (("é", -0.1), ("e", -2.0), ("a", -3.0)))
    assert trimmed([entry], 2)[0].top == (("é", -0.1), ("e", -2.0)) and trimmed([entry], 0)[0].top == ()
    assert entry.bytes == [0xC3, 0xA9]


def test_top_logprobs_implies_logprobs_and_is_bounded() -> None:
    assert GenerationParams(top_logprobs=0).wants_logprobs and GenerationParams(logprobs=True).top_count == 0
    assert not GenerationParams().wants_logprobs and GenerationParams(top_logprobs=5).top_count == 5
    for bad in (-1, 21, True, 1.5):
        with pytest.raises(ConfigurationError, match="top_logprobs"):
            GenerationParams(top_logprobs=bad)
