"""Shared local servers for the reward-model, annotation, evaluator and ensemble tests.

One `LocalServer` per preset for the whole test session, started on first use and stopped at exit
(a plain fixture imported into several modules would start one per module).
"""

from __future__ import annotations

import asyncio
import atexit
from typing import Any

import pytest

from steerlm.serve.testing import LocalServer

_SERVERS: dict[str, LocalServer] = {}


def shared_server(preset: str) -> LocalServer:
    """The session's server for `preset` (restarted if a test stopped it), request log emptied."""
    pytest.importorskip("pytriton")
    server = _SERVERS.get(preset)
    if server is None:
        server = _SERVERS[preset] = LocalServer(preset=preset, startup_timeout=120.0, stop_timeout=20.0)
        atexit.register(server.close)
    if not server.is_running():
        server.start()
    server.clear_log()
    return server


class Driver:
    """Runs a sync or an async API through one interface, so each I/O test is written once."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.runner = asyncio.Runner() if mode == "async" else None

    def __call__(self, value: Any) -> Any:
        """`value` is the result of calling the sync API, or a coroutine of the async one."""
        return self.runner.run(value) if self.runner is not None else value

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
