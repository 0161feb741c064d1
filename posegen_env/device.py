"""The one rule for where tensors live: CUDA when torch sees a GPU, the CPU otherwise."""

from __future__ import annotations

import argparse

import torch


def resolve_device(device=None) -> torch.device:
    """``None`` or ``"auto"``: the first CUDA GPU if torch sees one, else the CPU; anything else as given.

    A CUDA device that torch cannot see fails here, with a way out, rather than deep inside a render.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r} ({err}); use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (chosen.index or 0) >= count:
            raise ValueError(f"device {device!r} asked for, but torch sees {count} CUDA GPU(s); use 'auto' or 'cpu'")
    return chosen


def device_argument(text: str) -> torch.device:
    """``resolve_device`` as an argparse ``type=``: a bad ``--device`` is a usage error with the reason."""
    try:
        return resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# Crops rendered and scored at once: a GPU is only busy with thousands of crops per call (the CPU
# gains nothing beyond a few dozen, and its caches favour small parts).
_RENDER_BATCH = {"cpu": 64, "cuda": 2048}


def default_render_batch(device: torch.device) -> int:
    """How many crops the environment renders at once on ``device``."""
    return _RENDER_BATCH.get(device.type, _RENDER_BATCH["cpu"])

