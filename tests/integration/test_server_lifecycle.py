"""``steerlm serve`` robustness: a long $HOME, readiness, a clean console, and nothing left behind after
``kill -9`` of the server process (only the parent: tritonserver and its stubs must follow it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from steerlm.client import SteerLMClient
from steerlm.errors import SteerLMError
from steerlm.params import GenerationParams
from steerlm.serve.console import HARMLESS, STOP_NOISE
from steerlm_testing import LocalServer

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
HARMLESS_LINES = ("CudaDriverHelper has not been initialized", "Failed to initialize NVML",
                  "Failed to set config modification time", "Exit timeout expired",
                  "leaked shared_memory objects", "Unable to allocate pinned system memory")


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def group_members(pgid: int) -> dict[int, str]:
    """Live (non-zombie) processes of a process group, with their command lines."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members[int(stat.parent.name)] = command
    return members


def mapped_segments(pids: list[int]) -> set[str]:
    """The ``/dev/shm/psm_*`` tensor-store segments these processes have mapped."""
    found = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        found |= {line.split()[-1] for line in maps.splitlines() if "/dev/shm/psm_" in line}
    return found


def model_copies(workspace: str) -> list[Path]:
    """Triton's ``/tmp/folderXXXXXX`` model copies that belong to the server with this workspace."""
    found = []
    for folder in Path("/tmp").glob("folder??????"):
        try:
            if workspace in (folder / "config.pbtxt").read_text(errors="replace"):
                found.append(folder)
        except OSError:
            continue
    return found


def test_long_home_streaming_model_and_a_quiet_console(tmp_path: Path) -> None:
    home = tmp_path / ("a-very-long-home-directory-" * 6)
    home.mkdir()
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "PYTRITON_HOME": str(home / ".cache/pytriton")}
    server = LocalServer(preset="minimal", env=env, workdir=tmp_path / "server", request_log=False)
    with server:
        workspace = server.info["workspace"]
        assert workspace.startswith("/tmp/stl-") and len(workspace) < 40, workspace
        assert len(str(home / ".cache/pytriton/workspace_abcdefgh" / f"{STREAMING}_0_0-server.sock")) > 107
        client = SteerLMClient(url=server.grpc_url, model=STREAMING, profile=CHAT)
        try:
            chunks = list(client.stream("hello [[say=one two three]]", GenerationParams(max_tokens=8)))
        finally:
            client.close()
        assert "".join(c.text for c in chunks) == "one two three"
        assert len(chunks) >= 3
        # an idle HTTP client keeps a connection open, so the stop runs into Triton's exit timeout
        idle = SteerLMClient(url=server.http_url, model=CHAT)
        assert idle.generate("ping [[say=pong]]").text == "pong"
        assert server.stop() == 0
        idle.close()
        full_log = server.full_log_path.read_text(errors="replace")
        console = server.server_log_path.read_text(errors="replace")
    assert not Path(workspace).exists() and not Path(workspace).parent.exists()
    assert model_copies(workspace) == []
    assert f"the full server log is {server.full_log_path}" in console
    shown = [line for line in console.splitlines() if any(noise in line for noise in HARMLESS_LINES)]
    assert shown == []
    # the filter had something to do: the full log has the messages the console left out
    assert "Failed to set config modification time" in full_log
    assert any(HARMLESS.search(line) or STOP_NOISE.search(line) for line in full_log.splitlines())


def test_kill_9_of_the_server_process_leaves_nothing_behind(tmp_path: Path) -> None:
    with LocalServer(preset="minimal", workdir=tmp_path, request_log=False) as server:
        pid = server.pid
        assert pid is not None
        workspace = server.info["workspace"]
        client = SteerLMClient(url=server.grpc_url, model=STREAMING, profile=CHAT, stream_timeout=60.0)
        got: list[Any] = []

        def consume() -> None:
            try:
                for chunk in client.stream("slow [[delay=0.3]]", GenerationParams(max_tokens=400)):
                    got.append(chunk.text)
            except SteerLMError as error:
                got.append(error)

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        assert wait_until(lambda: len(got) >= 3, 60.0), got
        members = group_members(pid)
        assert any("tritonserver" in command for command in members.values()), members
        segments = mapped_segments(list(members))
        assert model_copies(workspace), "the server's model copies should exist while it runs"

        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)  # the parent only, as a supervisor or OOM killer would
        assert wait_until(lambda: group_members(pid) == {}, 30.0), group_members(pid)
        reader.join(30.0)
        assert not reader.is_alive() and isinstance(got[-1], SteerLMError), got[-3:]
        assert time.monotonic() - killed_at < 30.0
        assert wait_until(lambda: not Path(workspace).parent.exists(), 15.0), workspace
        assert model_copies(workspace) == []
        assert [s for s in segments if Path(s).exists()] == []
        assert list(Path("/dev/shm").glob(f"pytrtion{pid}-*")) == []
        client.close()


def test_a_model_name_too_long_for_the_socket_path_is_refused_before_start(tmp_path: Path) -> None:
    name = "m" * 100
    done = subprocess.run(
        [sys.executable, "-m", "steerlm_testing.serve", "--preset", "none", "--model", f"{name}=current",
         "--log-file", str(tmp_path / "full.log")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "STEERLM_SERVER_READY" not in done.stdout
    assert "too long for PyTriton's IPC socket" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("ready", [{"a"}, {"a", "b"}])
def test_readiness_waits_for_every_model_and_its_backend(ready: set[str]) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from steerlm.serve.server import wait_ready

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.split("/")[3]
            self.send_response(200 if name in ready else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    class Triton:
        alive = False

        def is_alive(self) -> bool:
            return self.alive

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_address[1]}"
    try:
        triton = Triton()
        with pytest.raises(RuntimeError, match="b are not ready" if ready == {"a"} else "backends are not ready"):
            wait_ready(triton, url, ["a", "b"], timeout=1.0)
        if ready == {"a", "b"}:
            triton.alive = True
            wait_ready(triton, url, ["a", "b"], timeout=1.0)
    finally:
        http.shutdown()
        http.server_close()
