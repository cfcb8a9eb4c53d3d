"""Hard failure on purpose: kill the whole server (used by ``[[stream_fail_after=N]]``)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["kill_server_hard"]

FLUSH_SECONDS = 1.0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_server_hard() -> None:
    """SIGKILL this server and everything it started, after letting sent responses flush.

    When the server leads its own process group (``LocalServer`` starts it with
    ``start_new_session=True``) the group is killed; otherwise its descendants, then itself, so a shell
    that launched it is never hit.
    """
    sys.stdout.flush()
    time.sleep(FLUSH_SECONDS)
    pid = os.getpid()
    if os.getpgid(0) == pid:
        os.killpg(pid, signal.SIGKILL)
    for child in reversed(_descendants(pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    os._exit(137)
