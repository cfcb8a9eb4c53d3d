"""Fixtures for the reward-model, annotation, REST, ensemble and evaluator tests.

* ``reward_server`` / ``ensemble_server`` / ``current_server``: one `LocalServer` per preset ("reward",
  "ensemble", "current-servers") for the whole session, restarted if a test stopped it, with an empty
  request log for each test;
* ``sync_or_async``: a driver that runs a sync call's result or an async call's coroutine, so every I/O
  test is written once and runs in both forms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from steerlm_testing import LocalServer

T = TypeVar("T")


class Driver:
    """``drive(api.call(...))``: the value itself (sync) or the coroutine run to completion (async).

    ``drive.track(client)`` returns the client and closes it (``close()``, awaited for async clients)
    when the test ends, so no gRPC channel outlives its test.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.runner = asyncio.Runner() if mode == "async" else None
        self._clients: list[Any] = []

    def __call__(self, value: Any) -> Any:
        return self.runner.run(value) if self.runner is not None else value

    def track(self, client: T) -> T:
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            self(client.close())
        self._clients.clear()
        if self.runner is not None:
            self.runner.close()


def _session_server(preset: str, factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(preset=preset, workdir=factory.mktemp(f"{preset}-server"), startup_timeout=120.0,
                     stop_timeout=20.0) as server:
        yield server


@pytest.fixture(scope="session")
def _reward_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    yield from _session_server("reward", tmp_path_factory)


@pytest.fixture(scope="session")
def _ensemble_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    yield from _session_server("ensemble", tmp_path_factory)


@pytest.fixture(scope="session")
def _current_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    yield from _session_server("current-servers", tmp_path_factory)


def _fresh(server: LocalServer) -> LocalServer:
    if not server.is_running():
        server.start()
    server.clear_log()
    return server


@pytest.fixture
def reward_server(_reward_session: LocalServer) -> LocalServer:
    """The "reward" preset: reward_model, reward_model_v0_1, a verbosity-following chat model."""
    return _fresh(_reward_session)


@pytest.fixture
def ensemble_server(_ensemble_session: LocalServer) -> LocalServer:
    """The "ensemble" preset: the TensorRT-LLM ensemble variants."""
    return _fresh(_ensemble_session)


@pytest.fixture
def current_server(_current_session: LocalServer) -> LocalServer:
    """The "current-servers" preset: NeMo Export-Deploy's three deployables and Triton's vLLM backend."""
    return _fresh(_current_session)


@pytest.fixture(params=["sync", "async"])
def sync_or_async(request: pytest.FixtureRequest) -> Iterator[Driver]:
    driver = Driver(request.param)
    yield driver
    driver.close()
