"""`did_you_mean`: the closest known names for a misspelled one (difflib), for error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``" (did you mean 'verbosity'?)"`` when `name` is close to a known name, else ``""``.

    Compared case-insensitively; the known names are quoted as they are spelled.
    """
    if not isinstance(name, str):
        return ""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.75)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(by_lower[c]) for c in close)}?)"
