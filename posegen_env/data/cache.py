"""Where PoseGen caches what it renders once and reuses: base splits and test suites.

``POSEGEN_CACHE`` moves the cache (e.g. to a fast or shared disk); the default is ``~/.cache/posegen``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder: ``$POSEGEN_CACHE`` if set, else ``~/.cache/posegen``."""
    return Path(os.environ.get("POSEGEN_CACHE", Path.home() / ".cache" / "posegen"))
