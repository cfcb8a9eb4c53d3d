"""The NeMo-Aligner reward-model signature (``sentences`` → ``rewards``; REFERENCE §3c). Pure numpy.

Requests carry rendered conversations as ``sentences`` BYTES ``[B,1]``; nothing else is sent (the
optional ``tokens``/``sequence_lengths``/``add_EOS`` inputs stay unset, no BOS/EOS is added). The server
declares ``rewards`` FP32 ``(1,)`` but returns ``[B,9]`` — one float per attribute, in the order of
the attribute set (HelpSteer: quality, toxicity, humor, creativity, helpfulness, correctness,
coherence, complexity, verbosity). A different width (e.g. ``[B,1]`` from a server started with
``regression.merge_attributes=true``), a row count that does not match, or a non-finite value raises
`InvalidRequestError`: positional zipping would silently mislabel attributes. The v0.1–v0.3 output
``exceeded`` is neither requested nor needed.

Registered as signature ``"reward_model"`` (`steerlm.transport.signatures`): detection matches the
``sentences`` input AND the ``rewards`` output (the REST codec takes ``sentences`` too, but answers in
``sentences``). The codec does not generate text (`generates_text` False), so a text-generation client
whose model is detected as a reward model gets a ConfigurationError naming `steerlm.RewardModel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from steerlm.attributes import HELPSTEER, AttributeSet
from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.transport.base import Array
from steerlm.transport.codecs import Codec, ParamInput

__all__ = ["RewardCodec", "decode_rewards"]


class RewardCodec(Codec):
    """`sentences` BYTES in, `rewards` FP32 `[B, n_attributes]` out."""

    name: ClassVar[str] = "reward_model"
    prompt_input: ClassVar[str] = "sentences"
    text_output: ClassVar[str] = "rewards"
    cumulative_stream: ClassVar[bool] = False
    strips_echo: ClassVar[bool] = False
    stop_input: ClassVar[str] = ""
    params: ClassVar[tuple[ParamInput, ...]] = ()
    generates_text: ClassVar[bool] = False

    def decode(self, outputs: Mapping[str, Array], prompts: Sequence[str]) -> list[str]:
        raise ConfigurationError(
            f"model {self.spec.name!r} is a reward model (sentences -> rewards), not a text generator; "
            "score conversations with steerlm.RewardModel"
        )


def decode_rewards(
    outputs: Mapping[str, Array], rows: int, *, model: str, attribute_set: AttributeSet = HELPSTEER
) -> list[tuple[float, ...]]:
    """The reward vector of each of `rows` sentences, checked (see the module docstring)."""
    width = len(attribute_set.names)
    if "rewards" not in outputs:
        raise InvalidRequestError(f"the reward model returned no 'rewards' output (got {sorted(outputs)})",
                                  model=model)
    array = np.asarray(outputs["rewards"])
    if array.ndim != 2 or array.shape[0] != rows:
        raise InvalidRequestError(
            f"the reward model returned 'rewards' of shape {list(array.shape)} for {rows} sentence(s); "
            f"expected [{rows}, {width}]", model=model)
    if array.shape[1] != width:
        hint = " (was the server started with regression.merge_attributes=true?)" if array.shape[1] == 1 else ""
        raise InvalidRequestError(
            f"the reward model returned {array.shape[1]} value(s) per sentence; expected {width} "
            f"({', '.join(attribute_set.names)}){hint}. Refusing to label attributes positionally.",
            model=model)
    if not np.isfinite(array).all():
        bad = sorted({int(r) for r in np.argwhere(~np.isfinite(array))[:, 0]})
        raise InvalidRequestError(f"the reward model returned non-finite values for sentence(s) {bad}",
                                  model=model)
    return [tuple(float(v) for v in row) for row in array.astype(np.float64)]
