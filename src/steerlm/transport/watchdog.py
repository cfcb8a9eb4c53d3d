"""Inactivity timeout for blocking gRPC streams: one daemon thread cancels streams that go silent.

`Watchdog.watch(cancel, timeout)` registers a stream. The reader calls `pause()` when a response
arrives (the time its caller spends on the response is not server silence), `touch()` when it waits
for the next one, and `done()` when the stream ends. When `timeout` seconds pass without a response
while it waits, `cancel()` is called and `expired` is set, so the reader can raise a
RequestTimeoutError instead of a cancellation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Watch", "Watchdog", "shared_watchdog"]


class Watch:
    """One watched stream."""

    __slots__ = ("_cancel", "_owner", "deadline", "expired", "paused", "timeout")

    def __init__(self, owner: Watchdog, cancel: Callable[[], Any], timeout: float) -> None:
        self._owner = owner
        self._cancel = cancel
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.expired = False
        self.paused = False

    def pause(self) -> None:
        """A response arrived: the deadline does not run until the next `touch()`."""
        self.paused = True

    def touch(self) -> None:
        """Waiting for the next response: the deadline runs again from now (no lock needed: it only
        moves later; set before `paused` is cleared, so the watchdog never sees a stale one)."""
        self.deadline = time.monotonic() + self.timeout
        self.paused = False

    def done(self) -> None:
        self._owner._remove(self)


class Watchdog:
    """A lazily started daemon thread that sleeps until the earliest deadline of its watches."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None

    def watch(self, cancel: Callable[[], Any], timeout: float) -> Watch:
        entry = Watch(self, cancel, timeout)
        with self._cond:
            self._watches.add(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="steerlm-stream-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def _remove(self, entry: Watch) -> None:
        with self._cond:
            self._watches.discard(entry)

    def _run(self) -> None:
        while True:
            expired: list[Watch] = []
            with self._cond:
                if not self._watches:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                for entry in self._watches:
                    if entry.paused and entry.deadline <= now:
                        entry.deadline = now + entry.timeout
                expired = [w for w in self._watches if not w.paused and w.deadline <= now]
                for entry in expired:
                    entry.expired = True
                    self._watches.discard(entry)
                if not expired:
                    earliest = min(w.deadline for w in self._watches)
                    self._cond.wait(max(earliest - now, 0.001))
            for entry in expired:
                entry._cancel()


_SHARED = Watchdog()


def shared_watchdog() -> Watchdog:
    """The process-wide watchdog used by the blocking gRPC connections."""
    return _SHARED
