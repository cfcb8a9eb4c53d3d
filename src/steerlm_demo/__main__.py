"""``python -m steerlm_demo`` — see `steerlm_demo.demo`."""

import sys

from steerlm_demo.demo import main

sys.exit(main())
