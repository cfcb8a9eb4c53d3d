"""Configuration from the environment for the adapters (like ``NVIDIA_BASE_URL`` for ChatNVIDIA).

``STEERLM_URL``, ``STEERLM_API_KEY`` and ``STEERLM_MODEL`` fill the ``url``, ``api_key`` and ``model``
arguments when they are not given (or given as None); an explicit argument always wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["ENV_VARIABLES", "with_env_defaults"]

ENV_VARIABLES: Mapping[str, str] = {"url": "STEERLM_URL", "api_key": "STEERLM_API_KEY", "model": "STEERLM_MODEL"}


def with_env_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with each missing ``url`` / ``api_key`` / ``model`` taken from its environment variable."""
    out = dict(data)
    for name, variable in ENV_VARIABLES.items():
        value = os.environ.get(variable, "").strip()
        if value and out.get(name) is None:
            out[name] = value
    return out
