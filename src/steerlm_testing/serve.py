"""``python -m steerlm_testing.serve [options]``: ``steerlm serve`` with the kit's scripted models.

It registers the kit's backends and presets (`steerlm_testing.presets`), then runs the product's
``steerlm serve`` command with two other defaults: the ``test`` preset, and the ``scripted`` backend for
``--model NAME=SIGNATURE``. Every other option is ``steerlm serve``'s (``--help`` lists them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from steerlm.serve import command
from steerlm_testing.presets import SCRIPTED, TEST_PRESET, register

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """``steerlm serve``'s parser with the kit's presets and defaults."""
    register()
    parser = argparse.ArgumentParser(prog="python -m steerlm_testing.serve",
                                     description="run a local Triton server with the kit's scripted test models")
    command.add_arguments(parser)
    parser.set_defaults(preset=TEST_PRESET, model_backend=SCRIPTED)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return command.run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
