"""``python -m steerlm.serve [options]`` is ``steerlm serve [options]``."""

import sys

from steerlm.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
