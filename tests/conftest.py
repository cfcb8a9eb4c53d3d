"""Shared pytest fixtures.

* every test under ``tests/integration`` is marked ``integration``;
* ``local_server``: one `LocalServer` (preset "test", request log in a temporary directory) for the
  whole session, stopped at the end even when tests fail;
* ``server``: that same server for one test, restarted first if an earlier test stopped or killed it,
  with an empty request log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steerlm_testing import LocalServer

_INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(workdir=tmp_path_factory.mktemp("local-server"), startup_timeout=120.0,
                     stop_timeout=20.0) as server:
        yield server


@pytest.fixture
def server(local_server: LocalServer) -> LocalServer:
    if not local_server.is_running():
        local_server.start()
    local_server.clear_log()
    return local_server
