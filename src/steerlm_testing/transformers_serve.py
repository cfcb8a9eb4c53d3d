"""``transformers serve`` — Hugging Face transformers' own OpenAI-compatible server — on loopback, for tests.

`TransformersServe` runs ``transformers serve <checkpoint dir> --device cpu`` in a subprocess (its own
process group), pinned to that one local checkpoint, offline (``HF_HUB_OFFLINE``: nothing is
downloaded, no update check), on 127.0.0.1 and a free port, and waits until ``GET /health`` answers.
It always stops the server, also when its start fails: ``with TransformersServe(path) as served: ...``.

What it serves (transformers 5.24, ``transformers/cli/serving/``): ``POST /v1/completions`` (raw prompt,
no chat template; ``max_tokens``, ``temperature``, ``top_p``, ``seed``, ``stop`` → ``stop_strings``, which
*keeps* the stop string in the text; ``stream`` as SSE without a ``[DONE]`` line, usage in the last
chunk; a list ``prompt`` is refused with 400 "prompt must be a string."; fields outside the OpenAI
schema such as ``top_k`` are refused with 422), ``POST /v1/chat/completions``, ``POST /v1/responses``,
``GET /v1/models`` (the pinned checkpoint's path is its model id) and ``GET /health``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["TransformersServe"]

_LAUNCH = "from transformers.cli.transformers import main; main()"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class TransformersServe:
    """One ``transformers serve`` process serving `checkpoint` (a local HF checkpoint directory) on CPU."""

    def __init__(self, checkpoint: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout: float = 300.0, stop_timeout: float = 20.0) -> None:
        self.checkpoint = Path(checkpoint)
        self.host = host
        self.port = port or _free_port(host)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        handle, name = tempfile.mkstemp(prefix="transformers-serve-", suffix=".log")
        os.close(handle)
        self._log = Path(name)

    @property
    def model(self) -> str:
        """The served model id: the checkpoint path, as ``GET /v1/models`` lists it."""
        return str(self.checkpoint)

    @property
    def base(self) -> str:
        """``http://host:port/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def url(self) -> str:
        """The steerlm URL: ``openai+http://host:port/v1``."""
        return f"openai+{self.base}"

    def log_tail(self, size: int = 4000) -> str:
        return self._log.read_bytes()[-size:].decode("utf-8", "replace")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=2) as answer:
                return int(answer.status) == 200
        except OSError:
            return False

    def start(self) -> TransformersServe:
        if self._process is not None:
            return self
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        command = [sys.executable, "-c", _LAUNCH, "serve", self.model, "--host", self.host, "--port",
                   str(self.port), "--device", "cpu", "--log-level", "warning"]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while not self._healthy():
                if self._process.poll() is not None:
                    raise RuntimeError(f"transformers serve exited with {self._process.returncode}:\n"
                                       f"{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"transformers serve did not answer /health within {self.startup_timeout:g} s:"
                                       f"\n{self.log_tail()}")
                time.sleep(0.25)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(self.stop_timeout)

    def __enter__(self) -> TransformersServe:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        self._log.unlink(missing_ok=True)
