"""The blocking gRPC streams' inactivity watchdog: a paused watch (the caller is busy with a response)
never expires; once touched again, silence expires it."""

from __future__ import annotations

import threading
import time

from steerlm.transport.watchdog import Watchdog


def test_paused_watch_waits_and_touched_watch_expires() -> None:
    cancelled = threading.Event()
    watch = Watchdog().watch(cancelled.set, 0.1)
    watch.pause()
    time.sleep(0.3)
    assert not cancelled.is_set() and not watch.expired
    watch.touch()
    assert cancelled.wait(2.0)
    assert watch.expired
