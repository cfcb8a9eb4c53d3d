"""Control-marker neutralisation: user text must never become an ``<extra_id_N>`` token.

The SteerLM / NeMo tokenizers normalise text before matching their special tokens (SentencePiece's
``nmt_nfkc``: Unicode NFKC, plus the deletion of 30 control characters). So a marker can hide behind
look-alikes — fullwidth ``＜`` (U+FF1C), small-form ``﹤`` (U+FE64), fullwidth or mathematical letters
(``ｅ``, ``𝐞``), circled letters — and behind deleted control characters inside it
(``<extra\\x01_id_1>``). `neutralize` finds every character that acts as the ``<`` of such a marker
and replaces it with ``‹`` (U+2039), which is visible and not a marker character.

How it is fast: a marker after normalisation is a run of characters each of which normalises (on its
own) to one character of ``<extra_id_``, with deletable control characters anywhere between them. No
character's NFKC form is a longer string that overlaps the marker (checked over all of Unicode when
the tables below were made; `tests/unit/test_injection_property.py` re-checks it), so one compiled
regular expression over the raw text finds exactly the marker starts that per-character NFKC plus the
deletions would. Text without any ``<`` look-alike — almost all text — returns after a substring test.
"""

from __future__ import annotations

import re

from steerlm.errors import PromptError

__all__ = ["DELETED_CONTROLS", "MARKER_ESCAPE", "MARKER_PREFIX", "marker_starts", "neutralize"]

MARKER_PREFIX = "<extra_id_"
MARKER_ESCAPE = "\u2039"  # '‹' takes the place of the '<' of a neutralised marker
# The control characters SentencePiece's nmt_nfkc deletes (U+0001–U+0008, U+000B, U+000E–U+001F,
# U+007F, U+008F, U+009F); tab, LF, FF and CR become spaces, which break a marker instead.
DELETED_CONTROLS = "".join(map(chr, (*range(0x01, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, 0x8F, 0x9F)))
# Every character whose NFKC form is exactly one character of the marker prefix (all of Unicode).
_EQUIVALENTS = {
    "<": "<\ufe64\uff1c",
    "e": "e\u1d49\u2091\u212f\u2147\u24d4\uff45\U0001d41e\U0001d452\U0001d486\U0001d4ee\U0001d522\U0001d556"
         "\U0001d58a\U0001d5be\U0001d5f2\U0001d626\U0001d65a\U0001d68e",
    "x": "x\u02e3\u2093\u2179\u24e7\uff58\U0001d431\U0001d465\U0001d499\U0001d4cd\U0001d501\U0001d535\U0001d569"
         "\U0001d59d\U0001d5d1\U0001d605\U0001d639\U0001d66d\U0001d6a1",
    "t": "t\u1d57\u209c\u24e3\uff54\U0001d42d\U0001d461\U0001d495\U0001d4c9\U0001d4fd\U0001d531\U0001d565"
         "\U0001d599\U0001d5cd\U0001d601\U0001d635\U0001d669\U0001d69d",
    "r": "r\u02b3\u1d63\u24e1\uff52\U0001d42b\U0001d45f\U0001d493\U0001d4c7\U0001d4fb\U0001d52f\U0001d563"
         "\U0001d597\U0001d5cb\U0001d5ff\U0001d633\U0001d667\U0001d69b",
    "a": "a\u00aa\u1d43\u2090\u24d0\uff41\U0001d41a\U0001d44e\U0001d482\U0001d4b6\U0001d4ea\U0001d51e\U0001d552"
         "\U0001d586\U0001d5ba\U0001d5ee\U0001d622\U0001d656\U0001d68a",
    "_": "_\ufe33\ufe34\ufe4d\ufe4e\ufe4f\uff3f",
    "i": "i\u1d62\u2071\u2139\u2148\u2170\u24d8\uff49\U0001d422\U0001d456\U0001d48a\U0001d4be\U0001d4f2\U0001d526"
         "\U0001d55a\U0001d58e\U0001d5c2\U0001d5f6\U0001d62a\U0001d65e\U0001d692",
    "d": "d\u1d48\u2146\u217e\u24d3\uff44\U0001d41d\U0001d451\U0001d485\U0001d4b9\U0001d4ed\U0001d521\U0001d555"
         "\U0001d589\U0001d5bd\U0001d5f1\U0001d625\U0001d659\U0001d68d",
}
_LOOKALIKE_LT = _EQUIVALENTS["<"][1:]


def _pattern(classes: dict[str, str], gap: str) -> re.Pattern[str]:
    skip = f"[{re.escape(gap)}]*"
    return re.compile(skip.join(f"[{re.escape(classes[c])}]" for c in MARKER_PREFIX))


_ANY_MARKER = _pattern(_EQUIVALENTS, DELETED_CONTROLS)
# ASCII text: only the ASCII characters matter; a literal '<' first lets the engine skip ahead fast.
_ASCII_MARKER = re.compile(f"[{re.escape(DELETED_CONTROLS[:-2])}]*".join(re.escape(c) for c in MARKER_PREFIX))


def marker_starts(text: str) -> list[int]:
    """Indices in `text` of characters that act as the '<' of a (possibly disguised) marker."""
    if text.isascii():
        if "<" not in text or _ASCII_MARKER.search(text) is None:
            return []
        return [m.start() for m in _ASCII_MARKER.finditer(text)]
    if "<" not in text and not any(c in text for c in _LOOKALIKE_LT):
        return []
    return [m.start() for m in _ANY_MARKER.finditer(text)]


def neutralize(text: str, *, strict: bool = False) -> str:
    """Make `text` unable to produce an ``<extra_id_N>`` control token (see the module docstring).

    ``strict=True`` raises PromptError instead of escaping.
    """
    if "<" not in text and text.isascii():
        return text
    starts = marker_starts(text)
    if not starts:
        return text
    if strict:
        raise PromptError(
            "message text contains the control token prefix '<extra_id_' (or a Unicode look-alike); "
            "remove it, or use the default escaping mode (strict=False)"
        )
    chars = list(text)
    for index in starts:
        chars[index] = MARKER_ESCAPE
    return "".join(chars)
