"""Build a cached directory once, atomically: the one publishing rule of the model caches.

The embedded tiny model, the dequantised demo base model and the merged demo model are all directories
under the cache that are built in a temporary sibling first and renamed into place, so a reader never sees
a half-written copy and two concurrent builders both end with the same finished one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["build_once"]


def build_once(final: Path, manifest: str, build: Callable[[Path], object]) -> Path:
    """`final`, built by ``build(staging)`` first unless it holds `manifest`.

    `build` fills the temporary sibling directory ``staging`` and writes `manifest` last; the directory is
    then renamed to `final`. If another builder finished first, its copy is kept and this one discarded.
    """
    if (final / manifest).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(staging)
        try:
            staging.rename(final)
        except OSError:
            if not (final / manifest).is_file():  # not a concurrent builder's finished copy
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final
