"""The ``steerlm annotate IN.jsonl OUT.jsonl`` subcommand (see `steerlm.annotate` for the guarantees)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from steerlm.client.settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_REWARD_URL,
    DEFAULT_TIMEOUT,
)

__all__ = ["HELP", "add_arguments", "run"]

HELP = "label the assistant turns of NeMo chat jsonl files with a SteerLM reward model (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``steerlm annotate``."""
    parser.add_argument("input", type=Path, metavar="IN.jsonl", help="NeMo conversation records")
    parser.add_argument("output", type=Path, metavar="OUT.jsonl",
                        help="annotated records (appended; an interrupted run resumes where it stopped)")
    parser.add_argument("--url", action="append", default=None, metavar="URL",
                        help=f"reward model server (NeMo-Aligner serves HTTP only; default: {DEFAULT_REWARD_URL}); "
                             "repeat it for replicas: requests are load-balanced across them")
    parser.add_argument("--model", default="reward_model", help="Triton model name (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="records in flight (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per request (default: %(default)s)")
    parser.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES,
                        help="retries of retryable errors (default: %(default)s)")
    parser.add_argument("--ready-timeout", type=float, default=DEFAULT_READY_TIMEOUT,
                        help="seconds to wait for the model to become ready (default: %(default)s)")
    parser.add_argument("--skip-malformed", action="store_true",
                        help="report malformed input lines and go on (default: report them and stop)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class _Bar:
    """tqdm on stderr: count, rate and ETA."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._bar: Any = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="conv", desc="annotate", file=sys.stderr, disable=self._quiet,
                         dynamic_ncols=True, smoothing=0.1)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def _main(args: argparse.Namespace, bar: _Bar) -> int:
    from steerlm.annotate import annotate_file
    from steerlm.reward import AsyncRewardModel

    def malformed(item: Any) -> None:
        print(f"{args.input}:{item.line}: malformed: {item.reason}", file=sys.stderr)

    urls = args.url or [DEFAULT_REWARD_URL]
    async with AsyncRewardModel(args.model, urls, timeout=args.timeout, max_retries=args.max_retries,
                                ready_timeout=args.ready_timeout) as model:
        summary = await annotate_file(
            args.input, args.output, model.score_prompts, concurrency=args.concurrency,
            skip_malformed=args.skip_malformed, on_malformed=malformed, progress=bar,
        )
    bar.close()
    skipped = f", skipped {len(summary.malformed)} malformed line(s)" if summary.malformed else ""
    print(f"annotated {summary.written} record(s) ({summary.turns} turn(s)); {summary.resumed} were already "
          f"done{skipped}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the annotation; exit status 0 done, 1 server failure (rerun to resume), 2 bad input/usage."""
    from steerlm.annotate import AnnotationError
    from steerlm.errors import ConfigurationError, SteerLMError

    if args.concurrency < 1:
        print("steerlm annotate: --concurrency must be at least 1", file=sys.stderr)
        return 2
    bar = _Bar(args.quiet)
    try:
        return asyncio.run(_main(args, bar))
    except (AnnotationError, ConfigurationError, OSError) as exc:
        bar.close()
        print(f"steerlm annotate: {exc}", file=sys.stderr)
        return 2
    except SteerLMError as exc:
        bar.close()
        print(f"steerlm annotate: stopped: {exc}\nWhat was written is complete; run the same command again "
              "to resume.", file=sys.stderr)
        return 1
