"""Where PoseGen caches what it renders once and reuses: base splits and test suites.

``POSEGEN_CACHE`` moves the cache (e.g. to a fast or shared disk); the default is ``~/.cache/posegen``.
Several processes (side-by-side runs, sweep workers) may ask for the same entry at once: the first
renders it under a lock next to it and publishes it whole (datasets are installed atomically);
the others wait for the lock and then read what it wrote, so each entry is rendered once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

LOCK_SUFFIX = ".lock"


def cache_root() -> Path:
    """The cache folder: ``$POSEGEN_CACHE`` if set, else ``~/.cache/posegen``."""
    return Path(os.environ.get("POSEGEN_CACHE", Path.home() / ".cache" / "posegen"))


def ensure_cached(path: Path, is_complete: Callable[[Path], bool], build: Callable[[], None],
                  rebuild: bool = False) -> None:
    """Make the cache entry ``path`` exist whole: ``build`` it under a lock unless it ``is_complete``
    (checked again once the lock is held, so a waiting process reads what another one built)."""
    if not rebuild and is_complete(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + LOCK_SUFFIX):
        if rebuild or not is_complete(path):
            build()
