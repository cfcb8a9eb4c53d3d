"""The ``steerlm`` command's entry points: ``python -m steerlm`` is the ``steerlm`` command."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_steerlm_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "steerlm", "serve", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: steerlm serve") and "--preset" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "steerlm"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert missing.returncode == 2 and "COMMAND" in missing.stderr
