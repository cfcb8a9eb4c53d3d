"""Prompt directives and the word tokenizer of the scripted test model.

A directive is ``[[name]]`` or ``[[name=value]]`` anywhere in the prompt (the value ends at the first
``]]``). When a directive appears more than once, the last occurrence wins, so a later turn overrides an
earlier one. Values of ``say`` and ``error``/``raise`` messages understand four escapes:
``\\n`` (newline), ``\\t`` (tab), ``\\\\`` (backslash) and ``\\uXXXX`` (any character, e.g.
``\\u003cextra_id_1>`` for the ``<extra_id_1>`` marker that the client would otherwise neutralise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DIRECTIVE_NAMES",
    "Directives",
    "parse_directives",
    "strip_directives",
    "tokenize",
    "unescape",
]

DIRECTIVE_NAMES = ("delay", "sleep", "say", "error", "raise", "echo", "stream_fail_after", "stream_raise_after")
_DIRECTIVE = re.compile(r"\[\[([a-z_]+)(?:=(.*?))?\]\]", re.DOTALL)
_ESCAPE = re.compile(r"\\(n|t|\\|u[0-9a-fA-F]{4})")
_TOKEN = re.compile(r"<extra_id_\d+>|\n|[^\S\n]+|\S+?(?=<extra_id_\d+>|\s|$)[^\S\n]*")


def unescape(value: str) -> str:
    """Resolve ``\\n``, ``\\t``, ``\\\\`` and ``\\uXXXX``; any other backslash stays as it is."""

    def _one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code == "n":
            return "\n"
        if code == "t":
            return "\t"
        if code == "\\":
            return "\\"
        return chr(int(code[1:], 16))

    return _ESCAPE.sub(_one, value)


def tokenize(text: str) -> list[str]:
    """Split text into the scripted model's tokens; ``"".join(tokenize(t)) == t``.

    A token is an ``<extra_id_N>`` marker, a single newline, a run of other non-blank characters with
    the blanks (whitespace other than newlines) that follow it, or leading blanks.
    """
    return _TOKEN.findall(text)


def strip_directives(text: str) -> str:
    """The text with every directive removed."""
    return _DIRECTIVE.sub("", text)


def _number(name: str, raw: str | None) -> float:
    try:
        value = float(raw if raw is not None else "")
    except ValueError:
        raise ValueError(f"directive [[{name}=...]] needs a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"directive [[{name}=...]] must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class Directives:
    """The directives found in one prompt (None / False when absent)."""

    delay: float = 0.0
    sleep: float = 0.0
    say: str | None = None
    error: str | None = None
    raise_: str | None = None
    echo: bool = False
    stream_fail_after: int | None = None
    stream_raise_after: int | None = None


def parse_directives(prompt: str) -> Directives:
    """Read every known directive of `prompt`; unknown names are ignored.

    Raises ValueError for a malformed numeric value (the model turns it into an in-band error).
    """
    found: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(prompt):
        if match.group(1) in DIRECTIVE_NAMES:
            found[match.group(1)] = match.group(2)
    fail_after = found.get("stream_fail_after")
    raise_after = found.get("stream_raise_after")

    def _text(name: str) -> str | None:
        if name not in found:
            return None
        return unescape(found[name] or "")

    return Directives(
        delay=_number("delay", found["delay"]) if "delay" in found else 0.0,
        sleep=_number("sleep", found["sleep"]) if "sleep" in found else 0.0,
        say=_text("say"),
        error=_text("error"),
        raise_=_text("raise"),
        echo="echo" in found,
        stream_fail_after=(int(_number("stream_fail_after", fail_after))
                           if "stream_fail_after" in found else None),
        stream_raise_after=(int(_number("stream_raise_after", raise_after))
                            if "stream_raise_after" in found else None),
    )
