"""Completion clean-up: prompt-echo stripping, stop strings (whole text and streamed), marker residue.

Rules (REFERENCE §2.4): cut at the first stop string whether or not a newline precedes it, then drop
one LF right before the cut; at the end of a completion that stopped on length, drop a dangling partial
control marker (``<extra_id`` cut off by the token limit). `StopMatcher` applies exactly these rules to a
stream: it never emits text that may still turn out to be (the LF before) a stop string, so chunking a
text any way yields the same result as cleaning it whole (`clean_completion`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["StopMatcher", "clean_completion", "strip_echo"]

_MARKERS = ("<extra_id_0>", "<extra_id_1>", "<extra_id_2>")
_MIN_RESIDUE = 4  # shortest dangling marker prefix treated as residue: "<ext"
_MARKER_RE = re.compile(r"<extra_id_\d>")


@lru_cache(maxsize=64)
def _tables(stops: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str], str, re.Pattern[str], int]:
    """For a stop list: the stops (deduplicated), every proper prefix of a watched string (stops and
    markers, each watched once), their first characters (as a string and as a pattern), and the
    longest length."""
    kept = tuple(dict.fromkeys(s for s in stops if s))
    watch = tuple(dict.fromkeys((*kept, *_MARKERS)))
    prefixes = frozenset(w[:k] for w in watch for k in range(1, len(w)))
    firsts = "".join(dict.fromkeys(w[0] for w in watch))
    return kept, prefixes, firsts, re.compile(f"[{re.escape(firsts)}]"), max(len(w) for w in watch)


class StopMatcher:
    """Incremental stop-string matcher for streams.

    ``feed(delta)`` returns the text that is now safe to emit; ``finish()`` returns the rest once the
    stream has ended. ``stopped`` turns True as soon as a stop string is seen (stop reading then).
    Only the undecided tail is buffered; a delta that cannot start a stop string or a marker (none of
    their first characters, no trailing LF) passes straight through.
    """

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops, self._prefixes, firsts, self._firsts, self._longest = _tables(tuple(stops))
        self._first = firsts if len(firsts) == 1 else None  # usually just '<': a substring test
        self._lf_plain = "\n" not in firsts  # a held LF can only be the one dropped before a stop
        self._buffer = ""
        self.stopped = False
        self.stop_string: str | None = None

    def feed(self, delta: str) -> str:
        if self.stopped or not delta:
            return ""
        buffer = self._buffer
        if not buffer or (buffer == "\n" and self._lf_plain):
            # Fast path (what `_scan` would decide): no character of the delta can start a stop string
            # or a marker, so all of it is safe but a trailing LF, which is held back.
            first = self._first
            if (first not in delta) if first is not None else self._firsts.search(delta) is None:
                if delta[-1] != "\n":
                    self._buffer = ""
                    return buffer + delta
                if self._lf_plain:
                    self._buffer = "\n"
                    return buffer + delta[:-1]
        self._buffer = buffer + delta
        return self._scan(final=False)

    def finish(self) -> str:
        """Flush at end of stream (drops a dangling partial marker, keeps other text)."""
        if self.stopped:
            return ""
        out = self._scan(final=True)
        self._buffer = ""
        return out

    def _earliest_stop(self) -> tuple[int, str | None]:
        best, which = -1, None
        for stop in self._stops:
            index = self._buffer.find(stop)
            if index != -1 and (best == -1 or index < best):
                best, which = index, stop
        return best, which

    def _pending_start(self) -> int:
        """Earliest index whose suffix could still grow into a stop string or a marker."""
        buffer, prefixes = self._buffer, self._prefixes
        size = len(buffer)
        low = max(0, size - self._longest + 1)
        first = self._first
        if first is not None:  # every watched prefix starts with this one character: look only there
            start = buffer.find(first, low)
            while start != -1:
                if buffer[start:] in prefixes:
                    return start
                start = buffer.find(first, start + 1)
            return size
        for start in range(low, size):
            if buffer[start:] in prefixes:
                return start
        return size

    def _scan(self, *, final: bool) -> str:
        best, which = self._earliest_stop()
        pending = len(self._buffer) if final else self._pending_start()
        if best != -1 and best <= pending:
            out = self._buffer[:best]
            self._buffer, self.stopped, self.stop_string = "", True, which
            return out[:-1] if out.endswith("\n") else out
        if final:
            out = _drop_residue(self._buffer)
            self._buffer = ""
            return out
        hold = pending - 1 if pending > 0 and self._buffer[pending - 1] == "\n" else pending
        out, self._buffer = self._buffer[:hold], self._buffer[hold:]
        return out


def _drop_residue(text: str) -> str:
    for size in range(min(len(text), len(_MARKERS[0]) - 1), _MIN_RESIDUE - 1, -1):
        tail = text[-size:]
        if any(m.startswith(tail) for m in _MARKERS):
            text = text[:-size]
            return text[:-1] if text.endswith("\n") else text
    return text


def clean_completion(text: str, stops: Iterable[str], prompt: str | None = None) -> tuple[str, bool]:
    """Clean a whole completion: strip an echoed `prompt`, cut at stops, drop residue.

    Returns ``(text, stopped)`` where `stopped` tells whether a stop string was found.
    """
    if prompt is not None:
        text = strip_echo(text, prompt)
    matcher = StopMatcher(stops)
    out = matcher.feed(text) + matcher.finish()
    return out, matcher.stopped


def strip_echo(text: str, prompt: str) -> str:
    """Remove the prompt from the start of `text` (also when the server dropped the markers)."""
    if prompt and text.startswith(prompt):
        return text[len(prompt):]
    bare = _MARKER_RE.sub("", prompt)
    if bare and text.startswith(bare):
        return text[len(bare):]
    return text
