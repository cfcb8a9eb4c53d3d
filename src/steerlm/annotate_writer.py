"""The output writer of ``steerlm annotate``: lines in input order, appended and fsync'ed."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OrderedAppendWriter"]


class OrderedAppendWriter:
    """Append-only, in-order, fsync'ed writer with a reorder buffer: lines are handed in by sequence
    number in any order and written in order, each batch followed by ``fsync``."""

    def __init__(self, path: Path) -> None:
        existed = path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not existed:  # make the new directory entry durable too
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._ready: dict[int, bytes] = {}
        self.next = 0
        self.written = 0

    def put(self, sequence: int, line: bytes) -> int:
        """Buffer line `sequence`; write every line now in order. Returns how many were written."""
        self._ready[sequence] = line
        chunk = []
        while self.next in self._ready:
            chunk.append(self._ready.pop(self.next))
            self.next += 1
        if chunk:
            data = memoryview(b"".join(chunk))
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
            self.written += len(chunk)
        return len(chunk)

    def close(self) -> None:
        os.close(self._fd)
