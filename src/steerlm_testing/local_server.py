"""`LocalServer`: the local Triton server in a subprocess, for tests, benchmarks and demos.

    with LocalServer() as server:               # preset "test": four scripted models
        client = tritonclient.http.InferenceServerClient(server.http_address)
        ...
        server.last_request("nemo-v2.0")["inputs"]["prompts"]["data"]

The subprocess runs ``python -m steerlm_testing.serve`` (``steerlm serve`` with the kit's scripted
models registered) in its own session (process group), so `stop` (SIGTERM, then SIGKILL of the group
after `stop_timeout`) and `kill` (SIGKILL of the group at once) reach tritonserver and its stubs too.
Every wait is bounded, and the server stops by itself when the process that started it exits
(``--exit-with-parent``), even if that process is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from steerlm.serve.server import READY_PREFIX, free_port
from steerlm_testing.presets import TEST_PRESET

__all__ = ["LocalServer", "ServerStartError"]


class ServerStartError(RuntimeError):
    """The server exited or did not announce readiness in time; the message ends with its log."""


def _package_roots() -> list[str]:
    import steerlm
    import steerlm_testing

    roots = (Path(module.__file__ or "").resolve().parent.parent for module in (steerlm, steerlm_testing))
    return list(dict.fromkeys(str(root) for root in roots))


class LocalServer:
    """Start, stop, kill and restart a local server; read its request log."""

    def __init__(
        self,
        *,
        preset: str = TEST_PRESET,
        models: Sequence[str] = (),
        request_log: bool | str | os.PathLike[str] = True,
        host: str = "127.0.0.1",
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 120.0,
        stop_timeout: float = 30.0,
    ) -> None:
        """`models` are extra ``NAME=SIGNATURE`` specs; `request_log` True puts ``requests.jsonl`` in
        `workdir` (a temporary directory removed by `close` when not given)."""
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="steerlm-server-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if request_log is True:
            self.request_log_path: Path | None = self.workdir / "requests.jsonl"
        elif request_log is False:
            self.request_log_path = None
        else:
            self.request_log_path = Path(request_log)
        self.preset = preset
        self.host = host
        self.model_specs = tuple(models)
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.ports = {"http": http_port, "grpc": grpc_port, "metrics": metrics_port}
        self.server_log_path = self.workdir / "server.log"  # the server's console (stderr)
        self.full_log_path = self.workdir / "server-full.log"  # everything, Triton's known-harmless noise included
        self._process: subprocess.Popen[bytes] | None = None
        self._info: dict[str, Any] | None = None

    # ----- lifecycle -------------------------------------------------------------------------------
    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "steerlm_testing.serve", "--host", self.host, "--preset", self.preset,
                   "--exit-with-parent"]
        for name in ("http", "grpc", "metrics"):
            command += [f"--{name}-port", str(self.ports[name])]
        for spec in self.model_specs:
            command += ["--model", spec]
        if self.request_log_path is not None:
            command += ["--request-log", str(self.request_log_path)]
        command += ["--log-file", str(self.full_log_path)]
        return [*command, *self.extra_args]

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (*_package_roots(), env.get("PYTHONPATH")) if p)
        env.pop("STEERLM_REQUEST_LOG", None)
        return env

    def _wait_ports_free(self, deadline: float) -> None:
        for port in self.ports.values():
            while True:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        sock.bind((self.host, int(port or 0)))
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise ServerStartError(f"port {port} on {self.host} is still in use") from None
                time.sleep(0.1)

    def start(self) -> LocalServer:
        """Start the server and wait (bounded) for its ready line. Ports are kept for restarts."""
        if self.is_running():
            return self
        if self._process is not None:  # it died on its own: clean up what it left
            self._finish(self._process)
        for name, port in self.ports.items():
            if not port:
                taken = {p for p in self.ports.values() if p}
                port = free_port(self.host)
                while port in taken:
                    port = free_port(self.host)
                self.ports[name] = port
        deadline = time.monotonic() + self.startup_timeout
        self._wait_ports_free(deadline)
        if self.request_log_path is not None:
            self.request_log_path.parent.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        with self.server_log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                env=self._environment(), start_new_session=True,
            )
        threading.Thread(target=self._read_stdout, args=(self._process, ready), daemon=True).start()
        atexit.register(self.kill)
        while not ready.wait(0.1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                code = self._process.poll()
                self.kill()
                why = f"exited with status {code}" if code is not None else "was not ready in time"
                raise ServerStartError(f"the local server {why}; log tail:\n{self.log_tail()}")
        return self

    def _read_stdout(self, process: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe is closed when the server is finished
            for raw in process.stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if line.startswith(READY_PREFIX + " ") and not ready.is_set():
                    self._info = json.loads(line[len(READY_PREFIX) + 1:])
                    ready.set()

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait up to `timeout` (default `stop_timeout`), then SIGKILL the process group.
        Returns the exit status (None when it was not running)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=self.stop_timeout if timeout is None else timeout)
        return self._finish(process)

    def kill(self) -> int | None:
        """SIGKILL the whole process group at once (a crash, as far as clients can tell)."""
        process = self._process
        return None if process is None else self._finish(process)

    def _finish(self, process: subprocess.Popen[bytes]) -> int | None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        for segment in Path("/dev/shm").glob(f"pytrtion{process.pid}-*"):
            with contextlib.suppress(OSError):
                segment.unlink()
        workspace = (self._info or {}).get("workspace")
        if workspace:
            shutil.rmtree(workspace, ignore_errors=True)
        self._process = None
        atexit.unregister(self.kill)
        return process.returncode

    def restart(self) -> LocalServer:
        """Stop (if running) and start again on the same ports."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and remove the working directory when this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----- addresses -------------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """The server's ready line (urls, models, pid, request log, workspace)."""
        if self._info is None:
            raise RuntimeError("the local server has not been started")
        return self._info

    @property
    def http_url(self) -> str:
        return str(self.info["http_url"])

    @property
    def grpc_url(self) -> str:
        return str(self.info["grpc_url"])

    @property
    def metrics_url(self) -> str:
        return str(self.info["metrics_url"])

    @property
    def http_address(self) -> str:
        """``host:port`` for ``tritonclient.http`` (which takes no scheme)."""
        return self.http_url.split("://", 1)[1]

    @property
    def grpc_address(self) -> str:
        """``host:port`` for ``tritonclient.grpc``."""
        return self.grpc_url.split("://", 1)[1]

    @property
    def models(self) -> list[str]:
        return list(self.info["models"])

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # ----- logs ------------------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's stderr (tritonserver and PyTriton logs)."""
        try:
            text = self.server_log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every logged request (optionally of one model), oldest first."""
        if self.request_log_path is None:
            raise RuntimeError("this server was started without a request log")
        try:
            text = self.request_log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line being written right now
                continue
            if model is None or entry.get("model") == model:
                entries.append(entry)
        return entries

    def last_request(self, model: str | None = None) -> dict[str, Any]:
        """The most recent logged request (of `model`); LookupError when there is none."""
        entries = self.requests(model)
        if not entries:
            raise LookupError(f"no request logged{f' for model {model!r}' if model else ''}")
        return entries[-1]

    def clear_log(self) -> None:
        """Empty the request log."""
        if self.request_log_path is not None:
            self.request_log_path.write_text("", encoding="utf-8")
