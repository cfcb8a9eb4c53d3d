"""``python -m steerlm COMMAND [options]`` is the ``steerlm`` command (e.g. ``python -m steerlm serve``)."""

import sys

from steerlm.cli import main

if __name__ == "__main__":
    sys.exit(main())
