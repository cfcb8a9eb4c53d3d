"""Run PyTriton on loopback with the models of a preset and announce readiness on stdout.

Once every model answers ready the server prints exactly one line::

    STEERLM_SERVER_READY {"http_url": "http://127.0.0.1:P", "grpc_url": "grpc://127.0.0.1:Q", ...}

SIGINT and SIGTERM both stop it cleanly (PyTriton stops tritonserver, its stubs and its workspace).
PyTriton's workspace and IPC sockets live in a short private directory under /tmp (a long $HOME would
break the 107-byte socket-path limit); a watcher process (`steerlm.serve.cleanup`) stops whatever is left
and removes the leftovers if this process is killed. Triton's output goes through `console.ConsoleLog`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from steerlm.serve.cleanup import remove_leftovers, start_cleanup_watcher
from steerlm.serve.console import ConsoleLog
from steerlm.serve.registry import BACKENDS, SIGNATURES, Binding, ModelSpec, resolve
from steerlm.serve.request_log import RequestLog, with_request_log

__all__ = [
    "READY_PREFIX",
    "SOCKET_PATH_LIMIT",
    "GrpcTls",
    "ServerOptions",
    "fix_libpython",
    "free_port",
    "install_signal_handlers",
    "log_path_of",
    "private_directory",
    "serve",
    "wait_ready",
    "watch_parent",
]

READY_PREFIX = "STEERLM_SERVER_READY"
SOCKET_PATH_LIMIT = 107  # bytes of a Unix socket path (sun_path is 108, NUL included)
READY_TIMEOUT_SECS = 120.0
LOGGER = logging.getLogger("steerlm.serve")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


@dataclass(frozen=True)
class ServerOptions:
    """Where and how to serve. Port 0 means "pick a free one"."""

    host: str = "127.0.0.1"
    http_port: int = 0
    grpc_port: int = 0
    metrics_port: int = 0
    max_batch_size: int = 8
    instances: int = 1
    queue_delay_us: int = 0
    exit_timeout_secs: int = 3
    request_log: str | None = None
    backend: str | None = None
    backend_options: Mapping[str, str] = field(default_factory=dict)
    exit_with_parent: bool = False
    log_file: str | None = None
    verbose: bool = False
    grpc_tls: GrpcTls | None = None


@dataclass(frozen=True)
class GrpcTls:
    """Triton's own gRPC TLS: the server's certificate and key files; with `client_ca`, clients must
    present a certificate signed by it (mutual TLS)."""

    certificate: str
    key: str
    client_ca: str | None = None

    def triton_options(self) -> dict[str, Any]:
        return {"grpc_use_ssl": True, "grpc_server_cert": self.certificate, "grpc_server_key": self.key,
                "grpc_use_ssl_mutual": self.client_ca is not None, "grpc_root_cert": self.client_ca}


def fix_libpython() -> None:
    """Put this interpreter's libpython first, so the Python-backend stub loads the matching one."""
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libdir = sysconfig.get_config_var("LIBDIR")
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p and p != libdir]
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *paths])


def install_signal_handlers(on_stop: Callable[[], None] | None = None) -> None:
    """Restore SIGINT (a background launch inherits SIG_IGN) and make SIGTERM a KeyboardInterrupt.

    The first signal calls `on_stop` and starts the clean stop; later ones are ignored so they cannot
    interrupt it.
    """

    def _stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if on_stop is not None:
            on_stop()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)


def watch_parent(interval: float = 1.0) -> None:
    """Stop this server cleanly (SIGTERM to itself) once the process that started it is gone.

    `LocalServer` asks for this, so a test run that dies without stopping its server leaves nothing behind.
    """
    parent = os.getppid()

    def _watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=_watch, name="steerlm-parent-watch", daemon=True).start()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _bindings(models: Sequence[ModelSpec], options: ServerOptions) -> list[tuple[str, Binding]]:
    backends: dict[str, Any] = {}
    result = []
    for spec in models:
        backend_ref = options.backend or spec.backend
        if backend_ref not in backends:
            factory = resolve(backend_ref, BACKENDS, "backend")
            backends[backend_ref] = factory(**options.backend_options)
        builder = resolve(spec.signature, SIGNATURES, "signature")
        result.append((spec.name, builder(backends[backend_ref])))
    return result


def _announce(out: TextIO, info: Mapping[str, Any]) -> None:
    out.write(f"{READY_PREFIX} {json.dumps(info)}\n")
    out.flush()


def private_directory() -> Path:
    """A new private (0700) directory with a short path: under /tmp when writable, else the temp dir."""
    base = "/tmp" if os.access("/tmp", os.W_OK | os.X_OK) else None
    return Path(tempfile.mkdtemp(prefix="stl-", dir=base))


def _check_socket_paths(workspace: Path, bindings: Sequence[tuple[str, Binding]], instances: int) -> None:
    for name, _ in bindings:
        longest = workspace / f"{name}_0_{max(1, instances) - 1}-server.sock"
        if len(os.fsencode(longest)) > SOCKET_PATH_LIMIT:
            raise ValueError(f"model name {name!r} is too long for PyTriton's IPC socket {longest} "
                             f"({len(os.fsencode(longest))} bytes, the limit is {SOCKET_PATH_LIMIT}): "
                             "use a shorter model name")


def wait_ready(triton: Any, http_url: str, names: Sequence[str], timeout: float) -> None:
    """Block until Triton says every model is ready and PyTriton's side of each is alive."""
    deadline = time.monotonic() + timeout
    waiting = list(names)
    while True:
        waiting = [name for name in waiting if not _model_ready(http_url, name)]
        if not waiting and triton.is_alive():
            return
        if time.monotonic() > deadline:
            what = f"models {', '.join(waiting)} are" if waiting else "the model backends are"
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see the log above")
        time.sleep(0.2)


def _model_ready(http_url: str, name: str) -> bool:
    try:
        with _NO_PROXY.open(f"{http_url}/v2/models/{name}/ready", timeout=5) as response:
            return int(response.status) == 200
    except OSError:  # urllib.error.URLError and HTTPError are OSErrors
        return False


def log_path_of(options: ServerOptions) -> Path:
    """Where the full server log goes: ``--log-file``, else ``steerlm-serve-<pid>.log`` in the temp dir."""
    if options.log_file:
        return Path(options.log_file)
    return Path(tempfile.gettempdir()) / f"steerlm-serve-{os.getpid()}.log"


def serve(models: Sequence[ModelSpec], options: ServerOptions, out: TextIO | None = None) -> int:
    """Serve `models` until SIGINT/SIGTERM; returns the process exit status.

    Only the ready line goes to `out` (default: the original stdout); everything else printed by this
    process and its children goes through the console filter to stderr and the log file.
    """
    root = private_directory()
    log_path = log_path_of(options)
    console = ConsoleLog(log_path, verbose=options.verbose)
    watcher = start_cleanup_watcher(root)
    out = out or console.ready_stream()
    saved_stdout, sys.stdout = sys.stdout, sys.stderr  # PyTriton prints tritonserver's log with print()
    try:
        console.note(f"steerlm serve: the full server log is {log_path}")
        return _serve(models, options, out, root, console)
    finally:
        remove_leftovers(root, os.getpid())
        sys.stdout = saved_stdout
        if watcher.stdin is not None:
            watcher.stdin.close()  # the watcher finds nothing left and exits
        console.close()


def _serve(models: Sequence[ModelSpec], options: ServerOptions, out: TextIO, root: Path,
           console: ConsoleLog) -> int:
    fix_libpython()
    install_signal_handlers(console.stopping)
    if options.exit_with_parent:
        watch_parent()
    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import Triton, TritonConfig

    host = options.host
    ports = {
        "http": options.http_port or free_port(host),
        "grpc": options.grpc_port or free_port(host),
        "metrics": options.metrics_port or free_port(host),
    }
    log = RequestLog(options.request_log) if options.request_log else None
    bindings = _bindings(models, options)
    workspace = root / "workspace"
    _check_socket_paths(workspace, bindings, options.instances)
    config = TritonConfig(
        http_address=host, http_port=ports["http"], grpc_address=host, grpc_port=ports["grpc"],
        metrics_address=host, metrics_port=ports["metrics"], log_verbose=0,
        exit_timeout_secs=options.exit_timeout_secs,
        **(options.grpc_tls.triton_options() if options.grpc_tls else {}),
    )
    triton = Triton(config=config, workspace=workspace)
    status = 0
    try:
        for name, binding in bindings:
            # A unary call holds its model instance until it answers; decoupled calls return at once and
            # interleave on one instance. More than one instance races in PyTriton 0.7's start-up
            # handshake (the second stub may connect before the first listens), hence the default of 1.
            count = 1 if binding.decoupled else max(1, options.instances)
            instances = [with_request_log(binding.infer, log, name) for _ in range(count)]
            triton.bind(
                model_name=name,
                infer_func=instances if len(instances) > 1 else instances[0],
                inputs=list(binding.inputs),
                outputs=list(binding.outputs),
                config=ModelConfig(
                    batching=binding.batching,
                    max_batch_size=options.max_batch_size,
                    batcher=DynamicBatcher(max_queue_delay_microseconds=options.queue_delay_us),
                    decoupled=binding.decoupled,
                ),
                strict=False,
            )
        triton.run()
        wait_ready(triton, f"http://{host}:{ports['http']}", [name for name, _ in bindings], READY_TIMEOUT_SECS)
        _announce(out, {
            "http_url": f"http://{host}:{ports['http']}",
            "grpc_url": f"{'grpcs' if options.grpc_tls else 'grpc'}://{host}:{ports['grpc']}",
            "metrics_url": f"http://{host}:{ports['metrics']}/metrics",
            "models": [name for name, _ in bindings],
            "pid": os.getpid(),
            "request_log": str(log.path) if log else None,
            "workspace": str(workspace),
            "log_file": str(log_path_of(options)),
        })
        triton.serve()
    except KeyboardInterrupt:
        LOGGER.info("stopping")
    except RuntimeError as error:
        LOGGER.error("%s", error)
        status = 1
    finally:
        console.stopping()
        triton.stop()
    return status
