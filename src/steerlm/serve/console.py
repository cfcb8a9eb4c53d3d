"""The server's console: everything to a log file, the known-harmless Triton noise kept off the terminal.

`ConsoleLog` points this process's file descriptors 1 and 2 at a pipe (so the output of tritonserver,
its stubs and any helper process started afterwards passes through it too) and copies each line to the
log file and, unless it is known-harmless, to the original stderr: `HARMLESS` messages always, and
`STOP_NOISE` once the server has begun to stop (`stopping()`). `ready_stream()` returns the original
stdout for the ready line.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = ["HARMLESS", "STOP_NOISE", "ConsoleLog", "is_harmless"]

# What Triton prints on every start on a machine without a GPU: nothing is wrong with the server.
HARMLESS = re.compile(
    r"CudaDriverHelper has not been initialized"
    r"|Failed to initialize NVML"
    r"|Unable to allocate pinned system memory"
    r"|DCGM unable to start"
    r"|Failed to set config modification time"
)
# What a stop prints when clients still hold connections: Triton waits `--exit-timeout` seconds for them,
# then exits at once, and the Python-backend stubs' resource trackers report the tensor-store segments
# they then remove themselves.
STOP_NOISE = re.compile(
    r"Exit timeout expired"
    r"|Triton Inference Server exited with failure\. Please wait"
    r"|Non-graceful termination detected"
    r"|leaked shared_memory objects? to clean up"
    r"|warnings\.warn\('resource_tracker: "
    r"|resource_tracker: .*(?:psm_|pytrtion)"
)


def is_harmless(line: str, *, stopping: bool = False) -> bool:
    """Whether `line` is known noise that the console leaves out (the log file keeps it)."""
    return HARMLESS.search(line) is not None or (stopping and STOP_NOISE.search(line) is not None)


class ConsoleLog:
    """Route fd 1 and 2 through a filter into `log_path` and the console (the original stderr).

    With `verbose`, every line reaches the console. `close()` restores the descriptors.
    """

    def __init__(self, log_path: str | os.PathLike[str], *, verbose: bool = False) -> None:
        self.path = Path(log_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._verbose = verbose
        self._stopping = False
        self._saved = {fd: os.dup(fd) for fd in (1, 2)}
        self._log: BinaryIO = self.path.open("ab", buffering=0)
        read_end, write_end = os.pipe()
        for fd in (1, 2):
            os.dup2(write_end, fd)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="steerlm-console", daemon=True)
        self._thread.start()

    def ready_stream(self) -> TextIO:
        """A text stream on the original stdout (the caller closes it)."""
        return os.fdopen(os.dup(self._saved[1]), "w", encoding="utf-8", closefd=True)

    def stopping(self) -> None:
        """The server has begun to stop: leave `STOP_NOISE` off the console from now on."""
        self._stopping = True

    def note(self, text: str) -> None:
        """Write `text` (one line) to the console and the log, bypassing the filter."""
        data = (text.rstrip("\n") + "\n").encode("utf-8", errors="replace")
        os.write(self._saved[2], data)
        self._log.write(data)

    def _pump(self, read_end: int) -> None:
        console = self._saved[2]
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._emit(console, raw + b"\n")
            if pending:
                self._emit(console, pending + b"\n")

    def _emit(self, console: int, raw: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: the log was closed
            self._log.write(raw)
        if self._verbose or not is_harmless(raw.decode("utf-8", errors="replace"), stopping=self._stopping):
            with contextlib.suppress(OSError):
                os.write(console, raw)

    def close(self, timeout: float = 1.0) -> None:
        """Restore fd 1 and 2 and let the filter drain what is left (bounded by `timeout`: a helper
        process that outlives the server may hold the pipe open)."""
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
        self._thread.join(timeout)
        for saved in self._saved.values():
            os.close(saved)
        self._log.close()
