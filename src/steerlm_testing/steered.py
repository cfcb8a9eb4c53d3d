"""A scripted chat backend that follows the ``verbosity`` steering attribute (for the steering check).

Like `ScriptedBackend` (directives work the same), except that its default reply — pseudo-random
words — has ``3 + 6 × verbosity`` words, read from the prompt's last ``<extra_id_2>`` label line
(``max_tokens`` still caps it; no label line means verbosity 4). With the scripted reward scorer
(verbosity = words / 10), ``verbosity=1`` then scores lower than ``verbosity=4`` — a model that obeys.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from steerlm.attributes import parse_labels
from steerlm.errors import ConfigurationError
from steerlm.serve.backend import SamplingRequest
from steerlm_testing.directives import Directives
from steerlm_testing.scripted import ScriptedBackend

__all__ = ["SteeredBackend", "steered_length"]

_LABEL = "<extra_id_2>"


def steered_length(prompt: str) -> int:
    """Words of the default reply for `prompt`: 3 + 6 × the last label line's verbosity (default 4)."""
    start = prompt.rfind(_LABEL)
    verbosity = 4
    if start != -1:
        line = prompt[start + len(_LABEL):].split("\n", 1)[0]
        with contextlib.suppress(ConfigurationError):
            verbosity = parse_labels(line).get("verbosity", 4)
    return 3 + 6 * max(0, verbosity)


class SteeredBackend(ScriptedBackend):
    """`ScriptedBackend` whose default reply length follows ``verbosity`` (``[[echo]]`` shows the capped
    ``max_tokens``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__()

    def plan(self, prompt: str, params: SamplingRequest) -> tuple[Directives, list[str]]:
        return super().plan(prompt, replace(params, max_tokens=min(params.max_tokens, steered_length(prompt))))
