"""Where an environment step's time goes: named stages, timed only while ``timing()`` is active.

The stages of a step (posing, cameras, casting, marching, backgrounds, estimator, reward, ...)
wrap themselves in ``stage(name)``; outside ``timing()`` that costs one check. Inside, each stage
waits for the GPU before and after (CUDA runs asynchronously), so the split is true but the step
runs a little slower than untimed: measure throughput without it. Stages that run in parallel
threads (the CPU's Embree parts) add up to more than the wall time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_totals: dict[str, float] | None = None


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the enclosed work as stage ``name`` (only inside ``timing()``)."""
    if _totals is None:
        yield
        return
    _sync()
    start = time.perf_counter()
    try:
        yield
    finally:
        _sync()
        _totals[name] += time.perf_counter() - start


@contextmanager
def timing() -> Iterator[dict[str, float]]:
    """Collect the seconds spent in each stage while the block runs: the dict fills as it runs."""
    global _totals
    previous, _totals = _totals, defaultdict(float)
    try:
        yield _totals
    finally:
        _totals = previous
