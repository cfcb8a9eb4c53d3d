"""`steerlm.transport.extra_inputs.extra_array`: list values shaped by the declared dims and dtype."""

from __future__ import annotations

import numpy as np
import pytest

from steerlm.errors import ConfigurationError
from steerlm.transport.base import TensorSpec
from steerlm.transport.extra_inputs import extra_array


def test_flat_and_nested_lists_take_the_declared_dims() -> None:
    words = TensorSpec("bad_words", "BYTES", (-1,), True)
    assert extra_array(words, ("a", "b"), 2).tolist() == [[b"a", b"b"], [b"a", b"b"]]
    assert extra_array(words, ("a", "b"), 1, batched=False).shape == (2,)  # no batch dimension: the row alone
    pairs = TensorSpec("lora_config", "INT32", (-1, 3), True)
    config = extra_array(pairs, ((0, 1, 8), (1, 1, 8)), 1)
    assert config.dtype == np.int32 and config.shape == (1, 2, 3)
    assert extra_array(TensorSpec("w", "BYTES", (1, -1), True), ("x", "y"), 1).shape == (1, 1, 2)  # [1, n]
    assert extra_array(TensorSpec("p", "FP32", (-1,), True), (1, 2.5), 1).dtype == np.float32
    assert extra_array(TensorSpec("f", "BOOL", (-1,), True), (True, False), 1).tolist() == [[True, False]]
    assert extra_array(words, "one", 3).shape == (3, 1)  # scalars stay [B, 1]


def test_misshapen_values_say_what_the_model_declares() -> None:
    with pytest.raises(ConfigurationError, match=r"dims \[-1, 3\].*shape \[1, 2\]"):
        extra_array(TensorSpec("lora_config", "INT32", (-1, 3), True), (1, 2), 1)
    with pytest.raises(ConfigurationError, match=r"declared BOOL.*bools"):
        extra_array(TensorSpec("f", "BOOL", (-1,), True), (1,), 1)
    with pytest.raises(ConfigurationError, match="does not fit the declared UINT8"):
        extra_array(TensorSpec("u", "UINT8", (-1,), True), (-1,), 1)
