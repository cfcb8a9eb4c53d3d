"""Leave nothing behind when ``steerlm serve`` ends, even when it is killed with SIGKILL.

`start_cleanup_watcher` gives this server a private token in its environment — inherited by tritonserver,
its Python-backend stubs and PyTriton's tensor-store processes — and starts a small watcher process
(``python -m steerlm.serve.cleanup``) in its own session, holding the read end of a pipe whose write end
only this server holds. When the pipe closes (the server exited, cleanly or not), the watcher:

1. waits up to `GRACE_SECONDS` for the token's processes to exit by themselves (tritonserver gets
   SIGTERM from PyTriton's parent-death signal and stops its stubs), noting the shared-memory segments
   they have mapped;
2. SIGKILLs the token's processes still running (only processes of this user that carry the token);
3. removes what they left: the server's private directory, Triton's ``/tmp/folderXXXXXX`` model copies
   whose ``config.pbtxt`` names that directory, the ``psm_*`` segments those processes had mapped, and
   the Python-backend segments named after the server's pid (``pytrtion<pid>-*``).

The token is random per server, so nothing of another server (or any other program) is touched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["GRACE_SECONDS", "TOKEN_ENV", "find_leftovers", "remove_leftovers", "start_cleanup_watcher", "sweep"]

TOKEN_ENV = "STEERLM_SERVE_TOKEN"
GRACE_SECONDS = 5.0
_SHM = Path("/dev/shm")
_TRITON_TMP = Path("/tmp")


def _token_processes(token: str) -> list[int]:
    marker = f"{TOKEN_ENV}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _mapped_segments(pids: Iterable[int]) -> set[str]:
    names = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text(errors="replace")
        except OSError:
            continue
        for line in maps.splitlines():
            path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
            if path.startswith("/dev/shm/psm_"):
                names.add(path.removeprefix("/dev/shm/").removesuffix(" (deleted)"))
    return names


def find_leftovers(root: Path, server_pid: int) -> list[Path]:
    """Files and directories of the server at `root` (pid `server_pid`) that are still there."""
    found = [root] if root.exists() else []
    found += sorted(_SHM.glob(f"pytrtion{server_pid}-*"))
    marker = str(root)
    for folder in sorted(_TRITON_TMP.glob("folder??????")):
        with contextlib.suppress(OSError):
            if marker in (folder / "config.pbtxt").read_text(errors="replace"):
                found.append(folder)
    return found


def remove_leftovers(root: Path, server_pid: int, segments: Iterable[str] = ()) -> None:
    """Remove `find_leftovers` and the named ``/dev/shm`` `segments`."""
    for path in [*find_leftovers(root, server_pid), *(_SHM / name for name in segments)]:
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()


def sweep(token: str, root: Path, server_pid: int, grace: float = GRACE_SECONDS) -> None:
    """Stop the token's processes (after `grace` seconds) and remove the server's leftovers."""
    segments: set[str] = set()
    deadline = time.monotonic() + grace
    while (pids := _token_processes(token)) and time.monotonic() < deadline:
        segments |= _mapped_segments(pids)
        time.sleep(0.2)
    for _ in range(3):
        pids = _token_processes(token)
        if not pids:
            break
        segments |= _mapped_segments(pids)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    remove_leftovers(root, server_pid, segments)


def start_cleanup_watcher(root: Path) -> subprocess.Popen[bytes]:
    """Start the watcher for this server (whose private directory is `root`); sets the token in
    ``os.environ`` so every process started afterwards carries it. The returned process's stdin is the
    pipe: closing it (or exiting) starts the sweep."""
    token = secrets.token_hex(16)
    os.environ[TOKEN_ENV] = token
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "steerlm.serve.cleanup", token, str(root), str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )


def _main(argv: list[str]) -> int:
    token, root, server_pid = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the server's terminal must not stop the watcher
    sys.stdin.buffer.read()  # returns once the server is gone
    sweep(token, Path(root), int(server_pid))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
